"""The store holds prompts: its file and WAL files are readable by their owner only."""

from __future__ import annotations

import os
import stat

from polyroute.store import SQLiteStore


def test_a_new_store_and_its_wal_files_are_created_0600(tmp_path):
    old = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        store = SQLiteStore(tmp_path / "state.sqlite")
        try:
            paths = [tmp_path / n for n in ("state.sqlite", "state.sqlite-wal",
                                            "state.sqlite-shm")]
            assert all(p.exists() for p in paths)
            for p in paths:
                assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p.name
        finally:
            store.close()
    finally:
        os.umask(old)

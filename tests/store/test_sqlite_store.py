"""What only the SQLite store does: WAL mode, ``user_version``, file and directory errors."""

from __future__ import annotations

import sqlite3

import pytest

from polyroute.errors import StoreError
from polyroute.store import SQLiteStore
from polyroute.store.migrations import LATEST_VERSION


def test_fresh_store_is_migrated_in_wal_mode(tmp_path):
    path = tmp_path / "state.sqlite"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_missing_directory_or_store_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(tmp_path / "nope" / "state.sqlite")
    with pytest.raises(StoreError, match="no such store"):
        SQLiteStore(tmp_path / "absent.sqlite", readonly=True)

"""Request ids: random version-4 UUIDs in hex, one read of the kernel's source per pool."""

from __future__ import annotations

import os
import uuid

from polyroute.gateway import ids


def test_ids_are_unique_version_4_uuids_in_hex() -> None:
    drawn = [ids.request_id() for _ in range(3 * ids.POOL + 7)]
    assert len(set(drawn)) == len(drawn)
    for value in drawn[:50]:
        assert len(value) == 32 and uuid.UUID(hex=value).version == 4


def test_the_random_source_is_read_once_per_pool(monkeypatch) -> None:
    reads: list[int] = []
    urandom = os.urandom

    def counting(n: int) -> bytes:
        reads.append(n)
        return urandom(n)

    monkeypatch.setattr(ids, "_pool", [])
    monkeypatch.setattr(ids.os, "urandom", counting)
    for _ in range(2 * ids.POOL):
        ids.request_id()
    assert reads == [16 * ids.POOL, 16 * ids.POOL]

"""Replicas sharing a store recover only the requests of replicas that stopped."""

from __future__ import annotations

import time

from polyroute.store import RequestStart


def _start(store, rid: str, ts: float | None = None) -> None:
    store.start_request(RequestStart(rid, time.time() if ts is None else ts, "k", "p", "p",
                                     False))


def test_a_live_replicas_requests_are_left_alone_and_a_stopped_ones_are_closed(world):
    a, b = world.open(), world.open()
    try:
        a.heartbeat()
        b.heartbeat()
        _start(a, "of-a")
        _start(b, "of-b")
        a.flush()
        b.flush()
        # Both alive: nobody's request is closed.
        assert b.recover_abandoned(dead_after=30).result(10) == 0
        assert a.get_request("of-a").status == "in_progress"
        # Later, a has stopped heartbeating while b has not: b closes a's request, not its own.
        later = time.time() + 100
        b.heartbeat(now=later)
        b.flush()
        assert b.recover_abandoned(dead_after=30, now=later).result(10) == 1
        assert b.get_request("of-a").status == "interrupted"
        assert b.get_request("of-b").status == "in_progress"
    finally:
        a.close()
        b.close()


def test_a_request_without_an_owner_is_closed_once_it_is_old(world):
    store = world.open()
    try:
        now = time.time()
        store.heartbeat(now=now)
        store._submit(lambda conn: conn.execute(
            "INSERT INTO requests (id, ts, stream, status) VALUES (?, ?, 0, 'in_progress')",
            ("old", now - 3600)))
        store._submit(lambda conn: conn.execute(
            "INSERT INTO requests (id, ts, stream, status) VALUES (?, ?, 0, 'in_progress')",
            ("new", now)))
        store.flush()
        assert store.recover_abandoned(dead_after=30, now=now).result(10) == 1
        assert store.get_request("old").status == "interrupted"
        assert store.get_request("new").status == "in_progress"
    finally:
        store.close()

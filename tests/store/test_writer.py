"""The store's single writer: jobs that queue up commit together, each one still all or nothing."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from polyroute.store.writer import Writer


@pytest.fixture
def writer(tmp_path):
    conn = sqlite3.connect(tmp_path / "w.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (v TEXT)")
    w = Writer(conn, name="test-writer")
    yield w, tmp_path / "w.sqlite"
    w.close(5)
    conn.close()


def _rows(path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(v for (v,) in conn.execute("SELECT v FROM t"))


def _held(w: Writer) -> threading.Event:
    """Occupy the writer until the returned event is set, so the next jobs queue up as a group."""
    release, started = threading.Event(), threading.Event()

    def hold(conn):
        started.set()
        release.wait(5)

    w.submit(hold)
    assert started.wait(5)
    return release


def _insert(value: str):
    return lambda conn: conn.execute("INSERT INTO t VALUES (?)", (value,))


def test_a_failing_job_in_a_group_is_rolled_back_alone(writer):
    w, path = writer
    release = _held(w)

    def half_then_fail(conn):
        conn.execute("INSERT INTO t VALUES ('half')")
        raise ValueError("boom")

    first = w.submit(_insert("a"), wait=True)
    bad = w.submit(half_then_fail, wait=True)
    w.submit(_insert("b"))
    release.set()
    w.flush(5)
    assert first.result(5) is not None
    with pytest.raises(ValueError, match="boom"):
        bad.result(5)
    assert _rows(path) == ["a", "b"]
    assert w.failed_writes == 0


def test_a_job_that_ends_the_transaction_leaves_the_others_committed_once(writer):
    w, path = writer
    release = _held(w)

    def rollback_everything(conn):
        conn.execute("ROLLBACK")  # as an error that aborts the whole transaction would
        raise sqlite3.OperationalError("transaction lost")

    w.submit(_insert("a"))
    w.submit(rollback_everything)
    w.submit(_insert("b"))
    release.set()
    w.flush(5)
    assert _rows(path) == ["a", "b"]
    assert w.failed_writes == 1

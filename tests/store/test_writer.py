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


def test_a_group_runs_in_one_transaction_without_a_statement_per_job(writer):
    """Group commit costs one BEGIN and one COMMIT per group and nothing per job (no savepoints:
    a failure replays the group one job per transaction instead)."""
    w, path = writer
    statements: list[str] = []
    release = _held(w)
    w._conn.set_trace_callback(statements.append)
    for v in "abc":
        w.submit(_insert(v))
    release.set()
    w.flush(5)
    w._conn.set_trace_callback(None)
    assert _rows(path) == ["a", "b", "c"]
    words = [s.split()[0].upper() for s in statements]
    assert "SAVEPOINT" not in words and "RELEASE" not in words
    assert words.count("INSERT") == 3


def test_a_lone_failing_job_runs_once(writer):
    w, path = writer
    runs = []

    def fail(conn):
        runs.append(1)
        raise ValueError("boom")

    bad = w.submit(fail, wait=True)
    with pytest.raises(ValueError, match="boom"):
        bad.result(5)
    assert runs == [1]


def test_a_failing_commit_fails_only_the_jobs_that_cannot_commit(tmp_path):
    """A group whose COMMIT fails (here: a deferred foreign key broken by one job) is replayed
    one job per transaction; the good jobs commit."""
    path = tmp_path / "fk.sqlite"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.executescript(
        "PRAGMA foreign_keys = ON; CREATE TABLE t (v TEXT);"
        " CREATE TABLE p (id INTEGER PRIMARY KEY);"
        " CREATE TABLE c (pid INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);")
    w = Writer(conn, name="test-writer")
    try:
        release = _held(w)
        w.submit(_insert("a"))
        bad = w.submit(lambda c: c.execute("INSERT INTO c VALUES (42)"), wait=True)
        w.submit(_insert("b"))
        release.set()
        w.flush(5)
        with pytest.raises(sqlite3.IntegrityError):
            bad.result(5)
        assert _rows(path) == ["a", "b"]
        with sqlite3.connect(path) as check:
            assert check.execute("SELECT COUNT(*) FROM c").fetchone()[0] == 0
    finally:
        w.close(5)
        conn.close()

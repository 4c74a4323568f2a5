"""The single writer: one thread owns the write connection and commits jobs in arrival order.

Why one writer: SQLite allows one writer at a time; funnelling every write through one thread
means no ``database is locked`` retries, writes never block the event loop (enqueueing is a
``put`` on a queue), and ordering is guaranteed (a request's start row is always committed before
its final record or any feedback on it). Each job commits whole or not at all.

Group commit: the jobs already waiting when the writer wakes (at most :data:`MAX_GROUP`) run in
one transaction, so a busy gateway pays one commit per group instead of two per request (the
commits were a fifth of a proxied request's CPU). A job's waiter hears of its result only after
the group committed. If a job fails, the group's transaction is rolled back and its jobs run
again one per transaction, so only the failing job is lost — as :mod:`polyroute.store.pg_writer`
does, and for the same reason every job is harmless when run twice (``ON CONFLICT``, updates
guarded by status). Not a savepoint per job: the four statements of a request's two savepoints
were 12-30% of the writer's CPU for it (``benchmarks/results/store_writer.md``), paid on every
job for a failure that almost never happens.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from polyroute.errors import StoreError

logger = logging.getLogger(__name__)

Job = Callable[[sqlite3.Connection], Any]
_STOP = object()
#: Most jobs committed together.
MAX_GROUP = 64


class Writer:
    """Runs ``job(conn)`` for each submitted job inside ``BEGIN IMMEDIATE … COMMIT``."""

    def __init__(self, conn: sqlite3.Connection, name: str = "polyroute-store-writer") -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        #: Fire-and-forget jobs that failed (each one is logged with its traceback).
        self.failed_writes = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job, *, wait: bool = False) -> Future | None:
        """Queue ``job``; with ``wait`` return a future of its result (or exception)."""
        future: Future | None = Future() if wait else None
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            self._queue.put((job, future))
        return future

    @property
    def pending(self) -> int:
        """Jobs queued and not run yet (approximate while the thread runs)."""
        return self._queue.qsize()

    def flush(self, timeout: float | None = None) -> None:
        future = self.submit(lambda conn: None, wait=True)
        assert future is not None
        future.result(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Commit everything queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            group, stop = [self._queue.get()], False
            while group[-1] is not _STOP and len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if group[-1] is _STOP:
                group.pop()
                stop = True
            jobs = [(job, future) for job, future in group
                    if future is None or future.set_running_or_notify_cancel()]
            if jobs:
                self._commit(jobs)
            if stop:
                return

    def _commit(self, jobs: list[tuple[Job, Future | None]]) -> None:
        """Run ``jobs`` in one transaction; then tell their waiters. A job's error sends the
        whole group to :meth:`_one_by_one`."""
        conn = self._conn
        results: list[Any] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # noqa: BLE001 - the writer cannot begin: every job fails with it
            for _, future in jobs:
                self._report(future, False, exc)
            return
        try:
            for job, _ in jobs:
                results.append(job(conn))
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - a job or COMMIT failed: each job alone
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(jobs) == 1:  # alone already: no need to run it again
                self._report(jobs[0][1], False, exc)
            else:
                self._one_by_one(jobs)
            return
        for (_, future), result in zip(jobs, results, strict=True):
            self._report(future, True, result)

    def _one_by_one(self, jobs: list[tuple[Job, Future | None]]) -> None:
        """A group whose transaction a job's error rolled back: each job in its own."""
        conn = self._conn
        for job, future in jobs:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = job(conn)
                    conn.execute("COMMIT")  # may fail too (a deferred constraint)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except Exception as exc:  # noqa: BLE001 - reported to the waiter or logged
                self._report(future, False, exc)
                continue
            self._report(future, True, result)

    def _report(self, future: Future | None, ok: bool, value: Any) -> None:
        if ok:
            if future is not None:
                future.set_result(value)
        elif future is not None:
            future.set_exception(value)
        else:
            self.failed_writes += 1
            logger.error("store write failed and was rolled back", exc_info=value)


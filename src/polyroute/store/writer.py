"""The single writer: one thread owns the write connection and commits jobs in arrival order.

Why one writer: SQLite allows one writer at a time; funnelling every write through one thread
means no ``database is locked`` retries, writes never block the event loop (enqueueing is a
``put`` on a queue), and ordering is guaranteed (a request's start row is always committed before
its final record or any feedback on it). Each job is one transaction: it commits whole or not at
all.
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
        conn = self._conn
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            job, future = item
            if future is not None and not future.set_running_or_notify_cancel():
                continue
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = job(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except Exception as exc:  # noqa: BLE001 - reported to the waiter or logged, never lost
                if future is not None:
                    future.set_exception(exc)
                else:
                    self.failed_writes += 1
                    logger.exception("store write failed and was rolled back")
                continue
            if future is not None:
                future.set_result(result)

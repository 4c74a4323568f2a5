"""PostgreSQL's single writer: commits queued jobs in order and rides out a lost connection.

Why a queue that outlives the connection: the gateway must keep serving while its database is
briefly unreachable (a failover, a restart, a network blip). Every write is a job in one FIFO
queue; the writer thread runs the job at its head in its own transaction and pops it only once
that transaction committed. If the connection breaks, the job stays at the head, the thread
reconnects with a growing pause (up to two seconds) and runs it again — so the queue is flushed
in the order it was filled, and nothing queued is dropped.

Group commit: the thread runs the jobs waiting at the head of the queue (up to ``batch``) in
one transaction, in pipeline mode, so a burst costs one commit (one WAL flush) and few round
trips rather than one commit per job, while
each commit stays durable (``synchronous_commit`` as the server has it). If a job in a group
fails for a reason of its own, the group is rolled back and its jobs are run again one per
transaction, so only the failing job is dropped.

A job retried after a break may have committed already (the break hit while ``COMMIT`` was on
its way back): every job is written to be harmless when run twice (``ON CONFLICT``, updates
guarded by status, a finished request never finished again; see :mod:`polyroute.store.sql`).

The queue is bounded by ``limit``: :attr:`PgWriter.saturated` turns true when that many jobs
wait, which the gateway's admit stage turns into a 503 for *new* requests. Requests already
admitted still queue their writes — refusing them would drop records that were acknowledged —
so the queue may pass ``limit`` by what the requests in flight write (a few jobs each).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from polyroute.errors import StoreError

logger = logging.getLogger(__name__)

#: Jobs committed together at most (a group is whatever waits when the thread is free).
BATCH = 256
#: Pause before the first reconnection, and the longest pause between two.
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 2.0


class PgWriter:
    """Runs ``job(conn)`` for each submitted job in its own transaction, in order, retrying a job
    whose connection broke until it commits.

    ``connect`` opens a new connection (autocommit mode, so ``conn.transaction()`` is the job's
    whole transaction); ``wrap`` turns it into what jobs are given; ``is_transient`` tells a lost
    connection (retry) from a job's own failure (logged, or given to its waiter, and dropped).
    """

    def __init__(self, conn: Any, connect: Callable[[], Any], *, wrap: Callable[[Any], Any],
                 is_transient: Callable[[Any, BaseException], bool], limit: int,
                 location: str, batch: int = BATCH, name: str = "polyroute-pg-writer") -> None:
        self._conn: Any | None = conn
        self._connect = connect
        self._wrap = wrap
        self._is_transient = is_transient
        self.limit = limit
        self.location = location
        self.batch = max(1, batch)
        self._jobs: deque[tuple[Callable[[Any], Any], Future | None]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._abandon = False
        self._full = False
        self._down_since: float | None = None
        #: Fire-and-forget jobs that failed for a reason of their own (each logged).
        self.failed_writes = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- what the store and the gateway read -----------------------------------------------------
    @property
    def pending(self) -> int:
        """Jobs queued and not committed yet (the one being run included)."""
        return len(self._jobs)

    @property
    def saturated(self) -> bool:
        return len(self._jobs) >= self.limit

    @property
    def connected(self) -> bool:
        return self._down_since is None

    # -- queueing --------------------------------------------------------------------------------
    def submit(self, job: Callable[[Any], Any], *, wait: bool = False) -> Future | None:
        """Queue ``job``; with ``wait`` return a future of its result (or exception)."""
        future: Future | None = Future() if wait else None
        with self._cond:
            if self._closed:
                raise StoreError("the store is closed")
            self._jobs.append((job, future))
            if not self._full and len(self._jobs) >= self.limit:
                self._full = True
                logger.error("store queue full: %d write(s) wait for PostgreSQL at %s; new "
                             "requests are refused with 503 until it is reachable again",
                             len(self._jobs), self.location)
            self._cond.notify()
        return future

    def flush(self, timeout: float | None = None) -> None:
        future = self.submit(lambda conn: None, wait=True)
        assert future is not None
        future.result(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Commit everything queued (waiting up to ``timeout`` s for the database), then stop;
        what is still queued at the deadline is logged as lost."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                self._abandon = True
                lost = len(self._jobs)
                self._cond.notify()
            logger.error("PostgreSQL at %s still unreachable at shutdown: %d queued write(s) "
                         "were not committed", self.location, lost)
            self._thread.join(5)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to do
                logger.debug("closing the writer's connection failed", exc_info=True)
            self._conn = None

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        pause = _FIRST_PAUSE
        singles = 0  # after a failed group: run this many jobs one per transaction
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs or self._abandon:
                    return
                group = list(itertools.islice(self._jobs, 1 if singles else self.batch))
            try:
                if self._conn is None:
                    self._conn = self._connect()
                conn = self._wrap(self._conn)
                # Pipeline mode: statements go out without waiting for each answer (a job
                # waits only where it reads a result), so a group costs a few round trips.
                with self._conn.pipeline(), self._conn.transaction():
                    results = [job(conn) for job, _ in group]
            except Exception as exc:  # noqa: BLE001 - retried, or reported to the waiter / logged
                if self._is_transient(self._conn, exc):
                    self._lost(exc)
                    if self._sleep(pause):
                        return
                    pause = min(pause * 2, _MAX_PAUSE)
                    continue
                if len(group) > 1:  # someone's own failure: find whose, one job at a time
                    singles = len(group)
                    continue
                singles = max(0, singles - 1)
                self._pop(1)
                future = group[0][1]
                if future is not None:
                    if future.set_running_or_notify_cancel():
                        future.set_exception(exc)
                else:
                    self.failed_writes += 1
                    logger.error("store write failed and was rolled back", exc_info=exc)
                continue
            pause = _FIRST_PAUSE
            singles = max(0, singles - len(group))
            self._pop(len(group))
            if self._down_since is not None:
                logger.warning("PostgreSQL at %s reachable again after %.1f s; flushing %d "
                               "queued write(s)", self.location,
                               time.monotonic() - self._down_since, len(self._jobs))
                self._down_since = None
            for (_, future), result in zip(group, results, strict=True):
                if future is not None and future.set_running_or_notify_cancel():
                    future.set_result(result)

    def _pop(self, n: int) -> None:
        with self._cond:
            for _ in range(n):
                self._jobs.popleft()
            if self._full and len(self._jobs) < self.limit:
                self._full = False
                logger.warning("store queue below its limit again (%d write(s) waiting): "
                               "accepting new requests", len(self._jobs))

    def _lost(self, exc: BaseException) -> None:
        """The connection broke: drop it (the next try reconnects) and say so once."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is broken already
                logger.debug("closing a broken connection failed", exc_info=True)
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("PostgreSQL at %s unreachable (%s); queueing writes in memory "
                           "(%d waiting, limit %d) and retrying", self.location,
                           str(exc).strip().splitlines()[0] if str(exc).strip() else
                           type(exc).__name__, len(self._jobs), self.limit)

    def _sleep(self, seconds: float) -> bool:
        """Wait before reconnecting; True if the store is being abandoned (shutdown deadline)."""
        with self._cond:
            self._cond.wait_for(lambda: self._abandon, seconds)
            return self._abandon

"""The PostgreSQL store: the same tables, queries and guarantees as SQLite, shared by replicas.

Why psycopg 3 (with psycopg_pool) rather than asyncpg: the store's interface is synchronous by
design — request-path writes are queued to one writer thread (never awaited by the event loop)
and reads are plain blocking calls made at start-up or by the CLI. psycopg 3's synchronous API
fits that shape exactly: the writer thread owns one connection, reads borrow one from a
``psycopg_pool.ConnectionPool``, and the same code serves ``polyroute logs`` (no event loop
at all). asyncpg is async-only; using it here would mean running a second event loop in the
writer thread and bridging every read. psycopg also speaks libpq's connection strings and
environment (``PGPASSWORD``, ``sslmode``…) that operators already use, and its pipeline mode
makes ``executemany`` one round trip.

Every query is :class:`~polyroute.store.sql.SQLStore`'s, and the schema is the one ordered
list in :mod:`polyroute.store.migrations` (tracked in a ``schema_version`` table, applied under
an advisory lock so replicas starting together migrate once). What this module adds is the
connection handling: a writer that survives a lost connection with a bounded in-memory queue
(:mod:`polyroute.store.pg_writer`) and a pool of snapshot-consistent read connections.

Replicas: each request row carries the id of the process that started it (``owner``), and each
gateway heartbeats into the ``replicas`` table. Recovery (``recover=True`` at start, and then
every few seconds from the gateway) marks ``interrupted`` only the in-progress requests of
replicas not seen for ``replica_dead_after`` seconds — so a replica starting or recovering
never closes the live requests of the others, and a killed replica's requests are closed by the
survivors without waiting for it to come back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from psycopg import IsolationLevel
from psycopg.conninfo import conninfo_to_dict

from polyroute.errors import StoreError
from polyroute.store.dialect import pg_sql
from polyroute.store.migrations import LATEST_VERSION, pg_migrate, pg_schema_version
from polyroute.store.opening import display_url
from polyroute.store.pg_writer import PgWriter
from polyroute.store.sql import SQLStore
from polyroute.store.sql import recover as recover_interrupted

logger = logging.getLogger(__name__)


class PgConnection:
    """A psycopg connection as the shared queries use it (``?`` parameters, ``executemany``)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.conn.execute(pg_sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        cur = self.conn.cursor()
        cur.executemany(pg_sql(sql), rows)
        return cur


#: Server states that end or refuse a connection: an operator terminated it, the server is
#: shutting down, or not accepting connections yet.
_GOING_AWAY = ("57P01", "57P02", "57P03")


def _is_transient(conn: psycopg.Connection | None, exc: BaseException) -> bool:
    """A failure to retry: the connection is gone or could not be made, or the transaction lost
    a serialisation race with another replica; anything else is the job's own error."""
    if not isinstance(exc, psycopg.Error):
        return False
    if isinstance(exc, psycopg.errors.TransactionRollback) or exc.sqlstate in _GOING_AWAY:
        return True
    return conn is None or conn.closed or conn.broken


class PostgresStore(SQLStore):
    shared_by_replicas = True

    """A store in a PostgreSQL database (or one schema of it: put ``options=-csearch_path=…``
    in the URL).

    ``readonly`` reads only (``polyroute logs``); ``recover`` marks requests left in progress
    by a stopped gateway ``interrupted`` (see the module docstring for replicas);
    ``queue_limit`` is how many writes may wait for an unreachable database before new
    requests are refused; ``close_timeout`` how long ``close`` waits for it.
    """

    def __init__(self, url: str, *, readonly: bool = False, recover: bool = False,
                 queue_limit: int = 10_000, pool_size: int = 4, connect_timeout: float = 5.0,
                 close_timeout: float = 10.0, replica_dead_after: float = 30.0) -> None:
        self.url = url
        self.replica_dead_after = replica_dead_after
        self.location = display_url(url)
        self.readonly = readonly
        self.close_timeout = close_timeout
        self._connect_timeout = connect_timeout
        self._writer: PgWriter | None = None
        conn = self._connect()
        try:
            if readonly:
                version = pg_schema_version(conn)
                if version != LATEST_VERSION:
                    raise StoreError(f"{self.location}: schema version {version}, expected "
                                     f"{LATEST_VERSION}; start the gateway once to create or "
                                     f"upgrade it")
                conn.close()
            else:
                pg_migrate(conn, self.location)
                if recover:
                    now = time.time()
                    with conn.transaction():
                        PgConnection(conn).execute(
                            "INSERT INTO replicas (id, started_ts, last_seen) VALUES (?, ?, ?) "
                            "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
                            (self.instance, now, now))
                        n = recover_interrupted(PgConnection(conn),
                                                alive_since=now - self.replica_dead_after,
                                                keep=self.instance)
                    if n:
                        logger.warning("%s: %d request(s) left in progress by a previous run "
                                       "were marked interrupted", self.location, n)
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"{self.location}: cannot prepare the store ({_reason(exc)})"
                             ) from None
        except BaseException:
            conn.close()
            raise
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max(1, pool_size), open=False, name="polyroute-read",
            kwargs=self._liveness(),
            configure=_configure_reader, check=psycopg_pool.ConnectionPool.check_connection)
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg_pool.PoolTimeout:
            raise StoreError(f"{self.location}: cannot open read connections within "
                             f"{connect_timeout:g} s") from None
        if not readonly:
            self._writer = PgWriter(conn, self._open, wrap=PgConnection,
                                    is_transient=_is_transient, limit=queue_limit,
                                    location=self.location)

    def _open(self) -> psycopg.Connection:
        """A new autocommit connection (each write job opens its own transaction)."""
        return psycopg.connect(self.url, autocommit=True, **self._liveness())

    def _liveness(self) -> dict[str, int]:
        """Connection settings that notice a dead peer in seconds, where the URL does not set
        them: a database host that vanished without closing the connection (a partition, a
        failover) would otherwise leave the writer waiting for the system's TCP timeouts
        (minutes to hours) before its queue is flushed elsewhere."""
        given = conninfo_to_dict(self.url)
        wanted = {"connect_timeout": max(1, round(self._connect_timeout)), "keepalives": 1,
                  "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                  "tcp_user_timeout": 10_000}
        return {k: v for k, v in wanted.items() if k not in given}

    def _connect(self) -> psycopg.Connection:
        try:
            return self._open()
        except psycopg.Error as exc:
            raise StoreError(f"{self.location}: cannot connect to PostgreSQL "
                             f"({_reason(exc)})") from None

    # -- the write queue -------------------------------------------------------------------------
    @property
    def write_limit(self) -> int | None:
        return self._writer.limit if self._writer else None

    @property
    def saturated(self) -> bool:
        return self._writer is not None and self._writer.saturated

    @property
    def reachable(self) -> bool:
        return self._writer is None or self._writer.connected

    # -- reads -----------------------------------------------------------------------------------
    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[PgConnection]:
        """A pooled connection, one repeatable-read transaction per use (so every read is a
        snapshot, ``snapshot`` or not)."""
        try:
            with self._pool.connection(timeout=self._connect_timeout) as conn:
                yield PgConnection(conn)
        except psycopg_pool.PoolTimeout:
            raise StoreError(f"{self.location}: no read connection within "
                             f"{self._connect_timeout:g} s (is PostgreSQL reachable?)") from None
        except psycopg.Error as exc:
            raise StoreError(f"{self.location}: read failed ({_reason(exc)})") from None

    # -- lifecycle -------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        if self._writer is not None:
            self._writer.flush(timeout)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close(self.close_timeout)
            self._writer = None
        self._pool.close()


def _configure_reader(conn: psycopg.Connection) -> None:
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

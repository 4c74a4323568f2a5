"""The SQLite store: WAL mode, one transaction per request, every write through one writer thread.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of the process (the committed WAL
is in the OS); only a power cut can lose the last commits. A request's start row is queued before
routing, so a request in flight when the process dies is found on the next start and marked
``interrupted`` (``recover=True``) — never lost, never half-written.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polyroute.errors import StoreError
from polyroute.store.migrations import LATEST_VERSION, migrate, schema_version
from polyroute.store.sql import SQLStore, recover
from polyroute.store.writer import Writer

logger = logging.getLogger(__name__)


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=30)
        else:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store ({exc})") from None
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _create_private(path: Path) -> None:
    """Create the store file readable by its owner only (0600), if it does not exist yet.

    Why: it holds prompts and key digests, and SQLite would create it with the umask's mode
    (usually 0644). SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so
    they follow. An existing file keeps the mode its owner gave it.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store ({exc.strerror})") from None


class SQLiteStore(SQLStore):
    """A store in one SQLite file (the queries are :class:`~polyroute.store.sql.SQLStore`'s).

    ``readonly`` opens an existing store for reading only (``polyroute logs`` while a gateway is
    running); ``recover`` marks requests left ``in_progress`` by a crashed gateway as
    ``interrupted`` (only the gateway that owns the file should do this).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, recover: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.readonly = readonly
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_lock = threading.Lock()
        self._writer: Writer | None = None
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"{self.path}: no such store (the gateway creates it on its "
                                 f"first start)")
            conn = _connect(self.path, readonly=True)
            version = schema_version(conn)
            conn.close()
            if version != LATEST_VERSION:
                raise StoreError(f"{self.path}: schema version {version}, expected "
                                 f"{LATEST_VERSION}; start the gateway once to upgrade it")
            return
        if not self.path.parent.is_dir():
            raise StoreError(f"{self.path}: the directory {self.path.parent} does not exist")
        _create_private(self.path)
        conn = _connect(self.path)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, str(self.path))
            if recover:
                n = _recover(conn)
                if n:
                    logger.warning("%s: %d request(s) left in progress by a previous run were "
                                   "marked interrupted", self.path, n)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path}: cannot prepare the store ({exc})") from None
        self._writer = Writer(conn)

    # -- reads -----------------------------------------------------------------------------------
    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[sqlite3.Connection]:
        """A per-thread read connection (WAL readers never block the writer); with
        ``snapshot`` one read transaction, so a request and its child rows come from the same
        commit even while the gateway writes."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=self.readonly)
            self._local.conn = conn
            with self._read_lock:
                self._read_conns.append(conn)
        try:
            if snapshot:
                conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if snapshot:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: read failed ({exc})") from None

    # -- lifecycle -------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        if self._writer is not None:
            self._writer.flush(timeout)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            conn = self._writer._conn
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                logger.warning("%s: WAL checkpoint at close failed (%s)", self.path, exc)
            conn.close()
            self._writer = None
        with self._read_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns = []
            self._local = threading.local()


def _recover(conn: sqlite3.Connection) -> int:
    """:func:`~polyroute.store.sql.recover` in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        n = recover(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return n

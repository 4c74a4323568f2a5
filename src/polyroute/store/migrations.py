"""Schema migrations: one ordered list of functions for both stores, applied once each.

Why functions rather than SQL files: a migration can transform data as well as DDL, and the list
order *is* the version history (the version = number of migrations applied: ``PRAGMA
user_version`` in SQLite, the ``schema_version`` table in PostgreSQL). Never edit or reorder a
released migration; append a new one.

Why one list for SQLite and PostgreSQL: two histories would drift. Each migration receives a
:class:`Schema` whose ``execute`` takes DDL written the SQLite way (types in capitals: ``TEXT``,
``INTEGER``, ``REAL``, ``BLOB``) and translates it for PostgreSQL
(:func:`~polyroute.store.dialect.pg_ddl`). So a migration written for SQLite alone, taking a
``sqlite3.Connection`` and calling ``conn.execute``, is ported by changing its annotation to
``Schema``; only DDL the two dialects spell differently needs ``if db.dialect == POSTGRESQL``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from polyroute.errors import StoreError
from polyroute.store.dialect import POSTGRESQL, SQLITE, pg_ddl, pg_sql, split_statements


class Schema:
    """What a migration sees: ``execute`` and ``executemany`` (DDL or data statements, ``?``
    parameters) inside the migration's transaction — the two methods of a ``sqlite3.Connection``
    a migration uses — and the ``dialect`` for the rare statement that must differ."""

    def __init__(self, dialect: str, conn: Any) -> None:
        self.dialect = dialect
        self._conn = conn

    def _sql(self, sql: str) -> str:
        return pg_sql(pg_ddl(sql)) if self.dialect == POSTGRESQL else sql

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        return self._conn.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: list | tuple) -> Any:
        if self.dialect == POSTGRESQL:
            cur = self._conn.cursor()
            cur.executemany(self._sql(sql), rows)
            return cur
        return self._conn.executemany(sql, rows)


def _statements(db: Schema, script: str) -> None:
    """Run ``;``-separated DDL inside the caller's transaction (``executescript`` would commit)."""
    for statement in split_statements(script):
        db.execute(statement)


# Spend is aggregated per (client key, model, UTC day): cheap to sum for limits and logs.
def _v1_initial(db: Schema) -> None:
    _statements(db, """
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            finished_ts REAL,
            key_id TEXT,
            requested_model TEXT,
            profile TEXT,
            stream INTEGER NOT NULL DEFAULT 0,
            policy TEXT,
            preference TEXT,
            prompt TEXT,
            status TEXT NOT NULL,
            http_status INTEGER,
            error TEXT,
            chosen TEXT,
            fallbacks INTEGER NOT NULL DEFAULT 0,
            latency_ms REAL,
            decision_ms REAL,
            ttfb_ms REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost REAL NOT NULL DEFAULT 0,
            cost_source TEXT
        );
        CREATE INDEX requests_ts ON requests (ts);
        CREATE INDEX requests_status ON requests (status);

        CREATE TABLE candidates (
            request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            model TEXT NOT NULL,
            estimated_quality REAL,
            estimated_cost REAL,
            PRIMARY KEY (request_id, rank)
        );

        CREATE TABLE attempts (
            request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            backend TEXT NOT NULL,
            outcome TEXT NOT NULL,
            http_status INTEGER,
            error TEXT,
            latency_ms REAL,
            PRIMARY KEY (request_id, n)
        );

        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
            ts REAL NOT NULL,
            key_id TEXT,
            score REAL NOT NULL CHECK (score >= 0 AND score <= 1),
            comment TEXT
        );
        CREATE INDEX feedback_request ON feedback (request_id);

        CREATE TABLE keys (
            id TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            spend_limit REAL,
            spend_period TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            updated_ts REAL NOT NULL
        );

        CREATE TABLE spend (
            key_id TEXT NOT NULL,
            model TEXT NOT NULL,
            day TEXT NOT NULL,
            requests INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cost REAL NOT NULL,
            PRIMARY KEY (key_id, model, day)
        );
    """)


def _v2_borrowed_estimates(db: Schema) -> None:
    """A candidate may be routed on another model's estimates (a backend's ``like``)."""
    db.execute("ALTER TABLE candidates ADD COLUMN borrowed_from TEXT")


def _v3_calibration_answers(db: Schema) -> None:
    """Onboarding answers, one per (backend, prompt), kept as they arrive (resumable runs)."""
    _statements(db, """
        CREATE TABLE calibration_answers (
            backend TEXT NOT NULL,
            prompt_id TEXT NOT NULL,
            prompt TEXT NOT NULL,
            task TEXT NOT NULL,
            answer TEXT,
            quality REAL CHECK (quality IS NULL OR (quality >= 0 AND quality <= 1)),
            cost REAL NOT NULL DEFAULT 0,
            latency_s REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            detail TEXT NOT NULL DEFAULT '',
            error TEXT,
            ts REAL NOT NULL,
            PRIMARY KEY (backend, prompt_id)
        )
    """)


def _v4_rule_and_named_route(db: Schema) -> None:
    """The decision rule that fired for a request and the named route it took."""
    db.execute("ALTER TABLE requests ADD COLUMN rule TEXT")
    db.execute("ALTER TABLE requests ADD COLUMN named_route TEXT")


def _v5_cached_answers(db: Schema) -> None:
    """The semantic cache's answers (its in-memory index is rebuilt from them at start), and the
    dollars a cached answer saved on each request served from it."""
    _statements(db, """
        ALTER TABLE requests ADD COLUMN saved REAL NOT NULL DEFAULT 0;
        CREATE TABLE cached_answers (
            id INTEGER PRIMARY KEY,
            partition TEXT NOT NULL,
            category TEXT NOT NULL,
            exact TEXT NOT NULL,
            text TEXT NOT NULL,
            embedding BLOB NOT NULL,
            answer BLOB NOT NULL,
            model TEXT NOT NULL,
            cost REAL NOT NULL DEFAULT 0,
            created_ts REAL NOT NULL,
            expires_ts REAL NOT NULL
        );
        CREATE INDEX cached_answers_expires ON cached_answers (expires_ts)
    """)


def _v6_guard_verdicts(db: Schema) -> None:
    """The input guards' verdict per request (JSON: action, scores, span types, offsets)."""
    db.execute("ALTER TABLE requests ADD COLUMN guard TEXT")


def _v7_explanations_and_shadow(conn: Schema) -> None:
    """The decision explained (JSON, open-ended: shadow mode, pinning, effort notes) per
    request, and the blind pairwise comparisons shadow mode samples."""
    _statements(conn, """
        ALTER TABLE requests ADD COLUMN explain TEXT;
        CREATE TABLE shadow_comparisons (
            request_id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            profile TEXT,
            served TEXT NOT NULL,
            routed TEXT NOT NULL,
            verdict TEXT,
            served_cost REAL,
            routed_cost REAL NOT NULL DEFAULT 0,
            judge_cost REAL NOT NULL DEFAULT 0,
            detail TEXT
        );
        CREATE INDEX shadow_comparisons_ts ON shadow_comparisons (ts)
    """)


def _v8_responses(conn: Schema) -> None:
    """The Responses API's answers and conversations, for ``previous_response_id``."""
    _statements(conn, """
        CREATE TABLE responses (
            id TEXT PRIMARY KEY,
            key_id TEXT,
            created_ts REAL NOT NULL,
            model TEXT NOT NULL,
            items TEXT NOT NULL,
            response TEXT NOT NULL
        )
    """)


def _v9_conversations(conn: Schema) -> None:
    """Conversation pins (the model each conversation stays on, until it idles out), and on each
    request its conversation id, whether it was served pinned, and the pinning detail (JSON)."""
    _statements(conn, """
        ALTER TABLE requests ADD COLUMN conversation_id TEXT;
        ALTER TABLE requests ADD COLUMN pinned INTEGER;
        ALTER TABLE requests ADD COLUMN conversation TEXT;
        CREATE INDEX requests_conversation ON requests (conversation_id);
        CREATE TABLE conversation_pins (
            key TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            model TEXT NOT NULL,
            key_id TEXT,
            profile TEXT,
            turns INTEGER NOT NULL,
            prefix_tokens INTEGER NOT NULL,
            fallbacks TEXT NOT NULL,
            estimated_cost REAL,
            created_ts REAL NOT NULL,
            last_ts REAL NOT NULL,
            expires_ts REAL NOT NULL
        );
        CREATE INDEX conversation_pins_expires ON conversation_pins (expires_ts)
    """)


def _v10_replica_owners(db: Schema) -> None:
    """Which gateway process (replica) started each request, and when each was last alive: a
    replica sharing a database recovers only the requests of replicas that stopped."""
    _statements(db, """
        ALTER TABLE requests ADD COLUMN owner TEXT;
        CREATE INDEX requests_status_owner ON requests (status, owner);
        CREATE TABLE replicas (
            id TEXT PRIMARY KEY,
            started_ts REAL NOT NULL,
            last_seen REAL NOT NULL
        )
    """)


#: The schema's history; the version of a database is the number of these applied to it.
MIGRATIONS: list[Callable[[Schema], None]] = [
    _v1_initial, _v2_borrowed_estimates, _v3_calibration_answers,
    _v4_rule_and_named_route, _v5_cached_answers, _v6_guard_verdicts,
    _v7_explanations_and_shadow, _v8_responses, _v9_conversations, _v10_replica_owners]

LATEST_VERSION = len(MIGRATIONS)


def _check_version(version: int, where: str) -> None:
    if version > LATEST_VERSION:
        raise StoreError(f"{where}: schema version {version} is newer than this polyroute "
                         f"understands ({LATEST_VERSION}); upgrade polyroute")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str = "<store>") -> int:
    """Apply the missing migrations to a SQLite store, each in its own transaction; returns the
    new version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that each migration and
    its version bump commit together.
    """
    version = schema_version(conn)
    _check_version(version, path)
    db = Schema(SQLITE, conn)
    for i in range(version, LATEST_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[i](db)
            conn.execute(f"PRAGMA user_version = {i + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return LATEST_VERSION


#: Any constant shared by every polyroute replica: the advisory lock that serialises migrations,
#: so replicas starting together apply each migration once.
_PG_MIGRATION_LOCK = 0x706F6C79  # "poly"


def pg_schema_version(conn: Any) -> int:
    """The version of a PostgreSQL store (0 before its first migration)."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def pg_migrate(conn: Any, where: str = "<store>") -> int:
    """Apply the missing migrations to a PostgreSQL store (a psycopg connection in autocommit
    mode), each with its version bump in one transaction under an advisory lock; returns the
    new version."""
    db = Schema(POSTGRESQL, conn)
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = pg_schema_version(conn)
            _check_version(version, where)
            if version == LATEST_VERSION:
                return LATEST_VERSION
            MIGRATIONS[version](db)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version + 1,))

"""The ``store`` fixture runs every store test on both stores: SQLite and PostgreSQL.

A :class:`StoreWorld` knows where one test's store lives (a file, or a fresh PostgreSQL
schema), opens stores on it and runs raw SQL beside them — for the few checks that look under
the interface (a trigger that makes a write fail, the keys table, the schema version).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from polyroute.store import PostgresStore, SQLiteStore, Store
from polyroute.store.dialect import POSTGRESQL, SQLITE
from polyroute.store.migrations import Schema


class StoreWorld:
    def __init__(self, kind: str, where: Path | str) -> None:
        self.kind = kind
        self.where = where

    def open(self, **kwargs: Any) -> Store:
        if self.kind == "sqlite":
            return SQLiteStore(self.where, **kwargs)
        return PostgresStore(str(self.where), **kwargs)

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Run one statement (committed) beside the store; its rows, if any."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.where)
            try:
                rows = conn.execute(statement, params).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(str(self.where), autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []

    @contextmanager
    def schema(self) -> Iterator[Schema]:
        """What a migration receives, on this store's database, committed at the end."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.where)
            try:
                yield Schema(SQLITE, conn)
                conn.commit()
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(str(self.where)) as conn:
            yield Schema(POSTGRESQL, conn)

    def fail_inserts_of_backend(self, backend: str) -> None:
        """Make inserting an attempt of ``backend`` fail inside its transaction."""
        if self.kind == "sqlite":
            self.sql(f"CREATE TRIGGER boom BEFORE INSERT ON attempts WHEN NEW.backend = "
                     f"'{backend}' BEGIN SELECT RAISE(ABORT, 'boom'); END")
            return
        self.sql(f"CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 f"IF NEW.backend = '{backend}' THEN RAISE EXCEPTION 'boom'; END IF; "
                 f"RETURN NEW; END $$")
        self.sql("CREATE TRIGGER boom BEFORE INSERT ON attempts FOR EACH ROW "
                 "EXECUTE FUNCTION boom()")

    def set_version(self, version: int) -> None:
        if self.kind == "sqlite":
            self.sql(f"PRAGMA user_version = {version}")
        else:
            self.sql(f"UPDATE schema_version SET version = {version}")

    @staticmethod
    def crash(store: Store) -> None:
        """The process dies: its queued writes were committed, nothing else happens (no finish,
        no recovery); only the test's own handles are released."""
        store._writer.close()  # type: ignore[attr-defined]
        store._writer = None  # type: ignore[attr-defined]
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path) -> Iterator[StoreWorld]:
    if request.param == "sqlite":
        yield StoreWorld("sqlite", tmp_path / "state.sqlite")
        return
    from pgschema import fresh_schema

    with fresh_schema("store") as url:
        yield StoreWorld("postgresql", url)


@pytest.fixture
def store(world) -> Iterator[Store]:
    s = world.open()
    yield s
    s.close()

"""A fresh PostgreSQL schema per test, on the machine's database (127.0.0.1:5432, ``test``).

Why a schema per test: the database is shared by every test run on the machine (parallel
helpers, CI jobs); a test's store lives in its own schema, named uniquely and reached through
``search_path`` in the store URL, and is dropped when the test ends. Set
``POLYROUTE_TEST_POSTGRES`` to another server's URL to use it instead; where no server answers,
the tests that need one are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest

SERVER = os.environ.get("POLYROUTE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here (None when they can)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]' psycopg-pool)"
    try:
        psycopg.connect(SERVER, connect_timeout=3).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f"no PostgreSQL at {SERVER} ({first}); start one (README: 'PostgreSQL and "
                f"Redis') or set POLYROUTE_TEST_POSTGRES")
    return None


def schema_url(schema: str, server: str = SERVER) -> str:
    """``server``'s URL with ``schema`` as the only schema on the search path."""
    sep = "&" if "?" in server else "?"
    return f"{server}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[str]:
    """Create a uniquely named schema, yield its store URL, drop it (and everything in it)."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    schema = f"polyroute_{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(schema)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def via_port(url: str, port: int) -> str:
    """``url`` (of :data:`SERVER`'s host) reached through another local port (a relay)."""
    return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{port}/", 1)

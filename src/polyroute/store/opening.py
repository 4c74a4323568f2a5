"""Open the store a config (or a command-line ``--store``) names: a SQLite file or a URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from polyroute.store.base import Store

if TYPE_CHECKING:
    from polyroute.config import StoreConfig

#: URL schemes that name a PostgreSQL store (libpq accepts both).
PG_SCHEMES = ("postgresql://", "postgres://")


def is_pg_url(value: str) -> bool:
    return value.startswith(PG_SCHEMES)


def display_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return re.sub(r"^(\w+://[^:/@]*):[^@]*@", r"\1:***@", url)


def open_store(where: StoreConfig | str | Path, *, readonly: bool = False,
               recover: bool = False) -> Store:
    """The store at ``where``: a :class:`~polyroute.config.StoreConfig` (its ``url`` if set,
    else its ``path``), a ``postgresql://`` URL, or a SQLite file path.

    Why a function, not a branch in each caller: the gateway, ``polyroute logs``,
    ``export-feedback`` and ``onboard`` all open stores, and which kind a location names is
    decided here once.
    """
    from polyroute.store.postgres import PostgresStore
    from polyroute.store.sqlite import SQLiteStore

    if isinstance(where, str | Path):
        if isinstance(where, str) and is_pg_url(where):
            return PostgresStore(where, readonly=readonly, recover=recover)
        return SQLiteStore(where, readonly=readonly, recover=recover)
    if where.url is not None:
        return PostgresStore(where.url, readonly=readonly, recover=recover,
                             queue_limit=where.queue_limit, pool_size=where.pool_size,
                             connect_timeout=where.connect_timeout,
                             close_timeout=where.close_timeout,
                             replica_dead_after=where.replica_dead_after)
    return SQLiteStore(where.path, readonly=readonly, recover=recover)

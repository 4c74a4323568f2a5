"""The Redis the shared-state tests use: this machine's (127.0.0.1:6379, or
``POLYROUTE_TEST_REDIS``), a fresh key prefix per test so parallel runs never collide, and the
test skipped, saying why, only where no Redis answers."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

REDIS_URL = os.environ.get("POLYROUTE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class RedisSpace:
    url: str
    prefix: str

    def shared(self, **options: object) -> dict[str, object]:
        """A ``shared:`` config section for this space."""
        return {"url": self.url, "prefix": self.prefix, **options}


def _reachable() -> str | None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return None
    except redis.exceptions.RedisError as exc:
        return f"no Redis at {REDIS_URL} ({exc}); start one (docs/gateway.md, \"Shared state " \
               f"and replicas\") or set POLYROUTE_TEST_REDIS"
    finally:
        client.close()


@contextlib.contextmanager
def new_space() -> Iterator[RedisSpace]:
    """A key prefix of its own on the test Redis (the test skipped if none answers), deleted
    afterwards."""
    why = _reachable()
    if why is not None:
        pytest.skip(why)
    space = RedisSpace(REDIS_URL, f"prtest-{uuid.uuid4().hex[:12]}")
    yield space
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{space.prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_space() -> Iterator[RedisSpace]:
    with new_space() as space:
        yield space

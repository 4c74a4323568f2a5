"""The Redis connection shared state uses, and what a failure of it means for a request.

Why fail closed for money and open for rates: a limited key's request admitted while the ledger
cannot be read could overspend without bound (every replica would admit it), so it is refused
with 503 and ``Retry-After`` until Redis answers again; a rate limit protects throughput, not
money, so while Redis is away requests are admitted uncounted (and the log says so) rather than
stopping every keyed request. Keys without limits never touch Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis

from polyroute.config import SharedConfig, redact_url
from polyroute.errors import ConfigError
from polyroute.gateway.errors import APIError

logger = logging.getLogger(__name__)

#: Connections per replica. A Redis call takes well under a millisecond, so a few dozen carry
#: thousands of requests a second; without a bound every concurrent request would open its own
#: (a burst of connects that itself times out on a busy machine). A call waits for a free one
#: up to ``shared.timeout``.
POOL_SIZE = 32

#: What a Redis call can fail with when the server is away or slow.
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def check_reachable(config: SharedConfig) -> None:
    """Ping Redis once, blocking (at construction, before a port opens); ConfigError if not."""
    client = redis.Redis.from_url(config.url, socket_timeout=config.timeout,
                                  socket_connect_timeout=config.timeout)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise ConfigError(f"shared: cannot reach Redis at {redact_url(config.url)} ({exc}); "
                          f"start it (docs/gateway.md, \"Shared state and replicas\") or remove "
                          f"`shared:` to keep state per-process") from None
    finally:
        client.close()


def connect(config: SharedConfig) -> aioredis.Redis:
    """An asyncio client for the running loop (strings in and out), on a bounded pool."""
    pool = aioredis.BlockingConnectionPool.from_url(
        config.url, max_connections=POOL_SIZE, timeout=config.timeout,
        socket_timeout=config.timeout, socket_connect_timeout=config.timeout,
        decode_responses=True, health_check_interval=10)
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


class Outage:
    """Logs a Redis outage once every ``every`` seconds instead of once per request."""

    def __init__(self, what: str, every: float = 10.0) -> None:
        self.what = what
        self.every = every
        self._last = -float("inf")

    def seen(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            logger.error("shared state: Redis unreachable (%s: %s): %s", type(exc).__name__,
                         exc, self.what)


async def listen(client: aioredis.Redis, channel: str, heard: Callable[[str], Awaitable[None]],
                 outage: Outage, subscribed: Callable[[], Awaitable[None]] | None = None
                 ) -> None:
    """Await ``heard(message)`` for every message on ``channel``, for ever: a dropped
    subscription (Redis away) is logged and made again a second later, and ``subscribed`` is
    awaited each time it is (to catch up on what was missed)."""
    while True:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if subscribed is not None:
                await subscribed()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    await heard(message["data"])
        except REDIS_ERRORS as exc:
            outage.seen(exc)
            await asyncio.sleep(1.0)
        finally:
            try:
                await pubsub.aclose()
            except REDIS_ERRORS:
                pass


def spend_unavailable() -> APIError:
    return APIError(503, "the shared spend ledger (Redis) is unreachable: requests of keys with "
                         "a spend limit are refused until it is back", code="shared_state_down",
                    headers={"retry-after": "1"})

"""State that gateway replicas share: spend ledger, rate limits, breaker verdicts.

:func:`open_shared` returns the per-process implementation when the config has no ``shared:``
and the Redis one when it has; the interfaces are in ``base.py``, and docs/gateway.md ("Shared
state and replicas") says what is shared and what falls back.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from polyroute.config import GatewayConfig, SharedConfig, redact_url
from polyroute.gateway.shared.base import (
    RATE_WINDOW,
    BreakerSync,
    RateCharge,
    RateLimits,
    RouterSync,
    SharedState,
    SpendLedger,
)
from polyroute.gateway.shared.local import LocalRates, LocalSpend, local_state
from polyroute.gateway.shared.redis_breakers import RedisBreakers
from polyroute.gateway.shared.redis_client import check_reachable, connect
from polyroute.gateway.shared.redis_feedback import RedisFeedbackSync
from polyroute.gateway.shared.redis_rates import RedisRates
from polyroute.gateway.shared.redis_router import RedisRouterSync
from polyroute.gateway.shared.redis_spend import RedisSpend
from polyroute.store import Store

__all__ = ["RATE_WINDOW", "BreakerSync", "LocalRates", "LocalSpend", "RateCharge", "RateLimits",
           "RedisSharedState", "RouterSync", "SharedState", "SpendLedger", "open_shared"]


@dataclass
class RedisSharedState(SharedState):
    """The three parts on one Redis connection, opened in the event loop at start."""

    config: SharedConfig | None = None
    client: aioredis.Redis | None = None

    async def start(self, store: Store) -> None:
        assert self.config is not None
        self.client = connect(self.config)
        for part in (self.spend, self.rates, self.breakers, self.router, self.feedback):
            part.open(self.client)  # type: ignore[attr-defined]
        await super().start(store)

    def pins(self) -> object | None:
        """Conversation pins in Redis (``redis_pins.py``; needs ``polyroute.conversations``,
        imported here so a gateway without conversations never loads it)."""
        from polyroute.gateway.shared.redis_pins import RedisPins

        assert self.client is not None and self.config is not None, "start() first"
        return RedisPins(self.client, self.config.prefix)

    async def close(self) -> None:
        await super().close()
        if self.client is not None:
            await self.client.aclose()


def open_shared(config: GatewayConfig, *, check: bool = True) -> SharedState:
    """The shared state ``config`` asks for; with ``shared:`` set and ``check``, ConfigError if
    Redis does not answer (a replica must not silently keep its limits to itself)."""
    shared = config.shared
    if shared is None:
        return local_state(config.keys)
    if check:
        check_reachable(shared)
    return RedisSharedState(RedisSpend(config.keys, shared), RedisRates(shared),
                            RedisBreakers(shared),
                            where=f"{redact_url(shared.url)} (prefix {shared.prefix!r})",
                            shared=True, router=RedisRouterSync(shared),
                            feedback=RedisFeedbackSync(shared), config=shared)

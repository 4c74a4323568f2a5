"""Circuit-breaker transitions shared by replicas: a key per open breaker, and a channel.

When a replica's breaker for a backend opens it sets ``<prefix>:breaker:<backend>`` for the
cooldown (so a replica starting later sees it) and publishes ``open`` on ``<prefix>:breakers``;
every other replica adopts it (skips the backend for the rest of the cooldown). A closing after
a successful probe is published the same way. Each replica still counts failures and probes on
its own: only the verdicts travel. When the cooldown ends every replica probes once, which is a
handful of requests, not a stampede.

If the subscription drops (Redis away), the replica goes on with its own breakers and, once
reconnected, reads the keys again to catch up.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable

import redis.asyncio as aioredis

from polyroute.config import SharedConfig
from polyroute.gateway.breaker import OPEN, CircuitBreaker
from polyroute.gateway.shared.base import BreakerSync
from polyroute.gateway.shared.redis_client import REDIS_ERRORS, Outage, listen

logger = logging.getLogger(__name__)


class RedisBreakers(BreakerSync):
    def __init__(self, config: SharedConfig) -> None:
        self._config = config
        self._client: aioredis.Redis | None = None
        self._breakers: dict[str, CircuitBreaker] = {}
        self._me = uuid.uuid4().hex[:12]
        self._channel = f"{config.prefix}:breakers"
        self._listener: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._outage = Outage("breaker states are not shared until it is back")

    def open(self, client: aioredis.Redis) -> None:
        self._client = client

    def attach(self, breakers: Iterable[tuple[str, CircuitBreaker]]) -> None:
        for name, breaker in breakers:
            self._breakers[name] = breaker
            breaker.listener = self._announcer(name)

    def _key(self, name: str) -> str:
        return f"{self._config.prefix}:breaker:{name}"

    def _announcer(self, name: str):
        def announce(state: str, cooldown: float) -> None:
            task = asyncio.get_running_loop().create_task(self._publish(name, state, cooldown))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return announce

    async def _publish(self, name: str, state: str, cooldown: float) -> None:
        assert self._client is not None
        ms = max(1, int(cooldown * 1000))
        try:
            if state == OPEN:
                await self._client.set(self._key(name), self._me, px=ms)
            else:
                await self._client.delete(self._key(name))
            await self._client.publish(self._channel, f"{self._me} {state} {ms} {name}")
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)

    async def _catch_up(self) -> None:
        """Adopt every breaker another replica holds open now."""
        assert self._client is not None
        for name, breaker in self._breakers.items():
            left = await self._client.pttl(self._key(name))
            if left > 0:
                breaker.adopt_open(left / 1000)

    async def _heard(self, message: str) -> None:
        sender, state, ms, name = message.split(" ", 3)
        breaker = self._breakers.get(name)
        if sender == self._me or breaker is None:
            return
        if state == OPEN:
            breaker.adopt_open(int(ms) / 1000)
            logger.warning("backend %s: breaker opened by another replica for %.1f s", name,
                           int(ms) / 1000)
        else:
            breaker.adopt_closed()

    async def start(self) -> None:
        """Subscribe, and adopt what is open now, before serving (Redis answered at start)."""
        assert self._client is not None
        ready = asyncio.Event()

        async def subscribed() -> None:
            await self._catch_up()
            ready.set()

        self._listener = asyncio.create_task(
            listen(self._client, self._channel, self._heard, self._outage, subscribed))
        try:
            await asyncio.wait_for(ready.wait(), self._config.timeout * 5)
        except TimeoutError:  # the listener keeps trying; serve on with own breakers meanwhile
            logger.error("shared state: could not subscribe to breaker states yet; this "
                         "replica's breakers are its own until it does")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

"""Router switches shared by replicas: one replica reloads, every replica follows.

A replica that switches routers (``POST /v1/admin/reload-router`` or SIGHUP, e.g. after
``polyroute onboard`` wrote a new router to ``router.path``) sets ``<prefix>:router`` to the new
router's identity and publishes it on the channel of the same name. Every other replica, on
hearing it — or, if it missed the message (Redis was away, it was starting), on its next poll of
the key every ``POLL_S`` seconds — reloads its own ``router.path`` unless it already serves that
identity. So a new router is published once and picked up everywhere, provided every replica's
``router.path`` holds it (one shared directory, or the same files copied to each): a replica that
loads something else says so in its log and keeps serving what it loaded.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from polyroute.config import SharedConfig
from polyroute.gateway.shared.base import RouterSync
from polyroute.gateway.shared.redis_client import REDIS_ERRORS, Outage, listen

logger = logging.getLogger(__name__)

#: Seconds between looks at the published identity (the path for a missed message).
POLL_S = 5.0


class RedisRouterSync(RouterSync):
    def __init__(self, config: SharedConfig) -> None:
        self._config = config
        self._client: aioredis.Redis | None = None
        self._me = uuid.uuid4().hex[:12]
        self._name = f"{config.prefix}:router"
        self._follow: Callable[[str], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._outage = Outage("router switches are not shared until it is back")

    def open(self, client: aioredis.Redis) -> None:
        self._client = client

    async def start(self, identity: str, follow: Callable[[str], Awaitable[None]]) -> None:
        assert self._client is not None
        self._follow = follow
        published = await self._client.get(self._name)
        if published is None:
            await self._client.set(self._name, identity, nx=True)
        elif published != identity:
            logger.warning("router: this replica loaded %s but %s is the published router; "
                           "following it", identity, published)
            self._spawn(follow(published))
        self._loops = [asyncio.create_task(listen(self._client, self._name, self._heard,
                                                  self._outage)),
                       asyncio.create_task(self._poll())]

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def published(self, identity: str) -> None:
        self._spawn(self._publish(identity))

    async def _publish(self, identity: str) -> None:
        assert self._client is not None
        try:
            await self._client.set(self._name, identity)
            await self._client.publish(self._name, f"{self._me} {identity}")
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)

    async def _heard(self, message: str) -> None:
        assert self._follow is not None
        sender, identity = message.split(" ", 1)
        if sender != self._me:
            await self._follow(identity)

    async def _poll(self) -> None:
        assert self._client is not None and self._follow is not None
        while True:
            await asyncio.sleep(POLL_S)
            try:
                identity = await self._client.get(self._name)
            except REDIS_ERRORS as exc:
                self._outage.seen(exc)
                continue
            if identity is not None:
                await self._follow(identity)

    async def close(self) -> None:
        for task in self._loops:
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

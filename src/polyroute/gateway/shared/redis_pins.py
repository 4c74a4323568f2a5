"""Conversation pins shared by replicas: one Redis key per pin, expiring on its own.

Implements the ``PinStore`` protocol of ``polyroute.conversations.pins``: a
conversation pinned on one replica is found pinned on every other, because the next turn may
reach any of them. ``<prefix>:pin:<key>`` holds the pin as JSON and expires at the pin's
``expires_ts`` (``PXAT``), so ``expire`` has nothing to do and the keyspace stays the size of the
live conversations.

Why fail open here (unlike spend): a pin only keeps a conversation on one model for its prompt
cache; while Redis is unreachable a turn is routed afresh (no pin found) and a new pin is not
kept, which costs some cache hits, never money beyond what routing would spend anyway.
"""

from __future__ import annotations

import dataclasses
import json

import redis.asyncio as aioredis

from polyroute.gateway.shared.redis_client import REDIS_ERRORS, Outage
from polyroute.store import ConversationPin


class RedisPins:
    """A ``PinStore`` in Redis (see the module docstring)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._outage = Outage("conversation pins are neither read nor kept until it is back")

    def _name(self, key: str) -> str:
        return f"{self._prefix}:pin:{key}"

    async def get(self, key: str, now: float) -> ConversationPin | None:
        try:
            raw = await self._client.get(self._name(key))
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)
            return None
        if raw is None:
            return None
        fields = json.loads(raw)
        fields["fallbacks"] = tuple(fields["fallbacks"])
        pin = ConversationPin(**fields)
        return pin if pin.expires_ts > now else None

    async def put(self, pin: ConversationPin) -> None:
        try:
            await self._client.set(self._name(pin.key), json.dumps(dataclasses.asdict(pin)),
                                   pxat=max(1, int(pin.expires_ts * 1000)))
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)

    async def expire(self, now: float) -> None:
        """Nothing to do: Redis expires each pin at its ``expires_ts``."""
        return None

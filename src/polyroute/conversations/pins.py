"""Where conversation pins live: a small interface of their own.

Why its own interface rather than the :class:`~polyroute.store.Store` directly: pins are the one
piece of conversation state every replica must see at once (a conversation's next turn may reach
another gateway), and a key-value store with native expiry (Redis) fits them better than the
request log does. The gateway only calls these three methods, so a shared implementation replaces
:class:`StorePins` without touching the pinning stage. They are async so such an implementation
can await its client; the in-store one answers at once (an indexed read; writes are queued).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from polyroute.store import ConversationPin, Store


class PinStore(Protocol):
    async def get(self, key: str, now: float) -> ConversationPin | None:
        """The pin under ``key`` unless it expired before ``now`` (unix time)."""
        ...

    async def put(self, pin: ConversationPin) -> None:
        """Keep (or replace) ``pin``; it expires at ``pin.expires_ts``."""
        ...

    async def expire(self, now: float) -> None:
        """Forget pins that expired before ``now`` (a store with native expiry does nothing)."""
        ...


class StorePins:
    """Pins in the gateway's own store (SQLite by default), with the latest ones in memory.

    Why the memory: the store queues writes, so a conversation's next turn — which a fast client
    sends the moment it has the answer — could read the store before the pin is committed.
    The ``recent`` pins written here are answered from memory (most recently written kept, so a
    conversation in progress always is); older ones from the store. Expired pins are never
    returned; they are deleted at start and then at most once per ``sweep_s`` seconds, from a
    ``put`` (so the table stays the size of the live conversations without a timer of its own).
    """

    def __init__(self, store: Store, sweep_s: float = 60.0, recent: int = 10_000) -> None:
        self.store = store
        self.sweep_s = sweep_s
        self.recent = recent
        self._recent: OrderedDict[str, ConversationPin] = OrderedDict()
        self._swept = float("-inf")

    async def get(self, key: str, now: float) -> ConversationPin | None:
        pin = self._recent.get(key)
        if pin is None:
            return self.store.get_pin(key, now)
        return pin if pin.expires_ts > now else None

    async def put(self, pin: ConversationPin) -> None:
        self.store.put_pin(pin)
        self._recent[pin.key] = pin
        self._recent.move_to_end(pin.key)
        while len(self._recent) > self.recent:
            self._recent.popitem(last=False)
        if pin.last_ts - self._swept >= self.sweep_s:
            await self.expire(pin.last_ts)

    async def expire(self, now: float) -> None:
        self._swept = now
        self.store.expire_pins(now)
        for key in [k for k, p in self._recent.items() if p.expires_ts <= now]:
            del self._recent[key]


class MemoryPins:
    """Pins in a dict: for simulations and tests of the pinning logic without a store."""

    def __init__(self) -> None:
        self.pins: dict[str, ConversationPin] = {}

    async def get(self, key: str, now: float) -> ConversationPin | None:
        pin = self.pins.get(key)
        return pin if pin is not None and pin.expires_ts > now else None

    async def put(self, pin: ConversationPin) -> None:
        self.pins[pin.key] = pin

    async def expire(self, now: float) -> None:
        self.pins = {k: p for k, p in self.pins.items() if p.expires_ts > now}


def clock() -> float:
    """The unix time pins are stamped and compared with (one place, so tests can see it)."""
    return time.time()

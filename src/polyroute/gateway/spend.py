"""Per-key spend limits, checked before each request from an in-memory tally.

Why in memory: the check is on every request's path and must not query the database; the tally is
seeded from the store at start-up (one gateway process owns a store) and advanced as requests
finish. Requests already in flight when a key crosses its limit still complete, so a key can
overshoot by the cost of its concurrent requests.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

from polyroute.config import KeyConfig
from polyroute.gateway.errors import APIError
from polyroute.store import Store


def period_start(period: str, now: float) -> float | None:
    """Unix time at which the current ``total``/``day``/``month`` period began (UTC)."""
    if period == "total":
        return None
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    start = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        start = start.replace(day=1)
    return start.timestamp()


class SpendTracker:
    """Dollars spent per limited key in its current period."""

    def __init__(self, keys: Sequence[KeyConfig], clock: Callable[[], float] = time.time) -> None:
        self._keys = {k.id: k for k in keys if k.spend_limit is not None}
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._since: dict[str, float | None] = {}

    def load(self, store: Store) -> None:
        """Seed the tallies from the store (blocking read; call at start-up)."""
        now = self._clock()
        cache: dict[float | None, dict[str, float]] = {}
        for key_id, key in self._keys.items():
            since = period_start(key.spend_period, now)
            if since not in cache:
                cache[since] = store.spend_by_key(since)
            self._spent[key_id] = cache[since].get(key_id, 0.0)
            self._since[key_id] = since

    def _roll(self, key: KeyConfig) -> None:
        since = period_start(key.spend_period, self._clock())
        if since != self._since.get(key.id):
            self._since[key.id] = since
            self._spent[key.id] = 0.0

    def check(self, key: KeyConfig | None) -> None:
        """Raise 429 if ``key`` has used up its limit for the current period."""
        if key is None or key.id not in self._keys:
            return
        self._roll(key)
        spent = self._spent.get(key.id, 0.0)
        if spent >= key.spend_limit:  # type: ignore[operator]
            raise APIError(429, f"spend limit reached for key {key.id!r}: ${spent:.4f} of "
                                f"${key.spend_limit:.4f} this {key.spend_period} period",
                           code="spend_limit_exceeded")

    def add(self, key_id: str | None, cost: float) -> None:
        key = self._keys.get(key_id) if key_id else None
        if key is None or cost <= 0:
            return
        self._roll(key)
        self._spent[key.id] = self._spent.get(key.id, 0.0) + cost

    def spent(self, key_id: str) -> float:
        return self._spent.get(key_id, 0.0)

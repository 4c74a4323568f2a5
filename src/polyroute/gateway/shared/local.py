"""Per-process shared state: the spend tracker as today, rate windows in a dict, lone breakers.

The default, and what a gateway without ``shared:`` runs: correct for one process, and each
replica of several would enforce every limit on its own share of the traffic only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from polyroute.config import KeyConfig
from polyroute.gateway.shared.base import (
    RATE_WINDOW,
    LocalBreakers,
    RateCharge,
    RateLimits,
    SharedState,
    SpendLedger,
    rate_refusal,
)
from polyroute.gateway.spend import Reservation, SpendTracker
from polyroute.store import Store


class LocalSpend(SpendLedger):
    """:class:`SpendTracker` behind the ledger interface (it runs on the loop: nothing awaits)."""

    def __init__(self, keys: Sequence[KeyConfig], clock: Callable[[], float] = time.time
                 ) -> None:
        self.tracker = SpendTracker(keys, clock)

    def limits(self, key: KeyConfig | None) -> bool:
        return self.tracker.limits(key)

    async def load(self, store: Store) -> None:
        self.tracker.load(store)

    async def check(self, key: KeyConfig | None) -> None:
        self.tracker.check(key)

    async def reserve(self, key: KeyConfig | None, amount: float) -> Reservation | None:
        return self.tracker.reserve(key, amount)

    async def reserve_answer(self, key: KeyConfig | None, cost: Callable[[int], float],
                             ceiling: int) -> tuple[Reservation | None, int | None]:
        return self.tracker.reserve_answer(key, cost, ceiling)

    def settle(self, reservation: Reservation | None, key_id: str | None, cost: float) -> None:
        self.tracker.release(reservation)
        self.tracker.add(key_id, cost)

    # What tests and operators read of one process's ledger.
    def spent(self, key_id: str) -> float:
        return self.tracker.spent(key_id)

    def reserved(self, key_id: str) -> float:
        return self.tracker.reserved(key_id)

    def in_flight(self, key_id: str) -> int:
        return self.tracker.in_flight(key_id)


class LocalRates(RateLimits):
    """Fixed one-minute windows per key, in memory (the rule is in :class:`RateLimits`)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        #: key id -> [window number, requests, tokens]
        self._windows: dict[str, list[int]] = {}

    def _window(self, key_id: str) -> list[int]:
        number = int(self._clock() // RATE_WINDOW)
        window = self._windows.get(key_id)
        if window is None or window[0] != number:
            window = self._windows[key_id] = [number, 0, 0]
        return window

    def _retry_after(self) -> float:
        return RATE_WINDOW - self._clock() % RATE_WINDOW

    async def admit(self, key: KeyConfig, tokens: int) -> RateCharge:
        window = self._window(key.id)
        if key.rpm is not None and window[1] >= key.rpm:
            raise rate_refusal(key, "requests", window[1], key.rpm, self._retry_after())
        if key.tpm is not None and window[2] > 0 and window[2] + tokens > key.tpm:
            raise rate_refusal(key, "tokens", window[2], key.tpm, self._retry_after())
        window[1] += 1
        window[2] += tokens
        return RateCharge(key.id, tokens)

    def settle(self, charge: RateCharge | None, tokens: int | None) -> None:
        if charge is None or charge.settled:
            return
        charge.settled = True
        if tokens is not None and tokens != charge.tokens:
            window = self._window(charge.key_id)
            window[2] = max(0, window[2] + tokens - charge.tokens)

    def used(self, key_id: str) -> tuple[int, int]:
        """(requests, tokens) counted in ``key_id``'s current window."""
        window = self._window(key_id)
        return window[1], window[2]


def local_state(keys: Sequence[KeyConfig]) -> SharedState:
    return SharedState(LocalSpend(keys), LocalRates(), LocalBreakers(), where="per-process",
                       shared=False)

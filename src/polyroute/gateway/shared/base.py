"""What replicas of one gateway must agree on, as three small interfaces.

A gateway keeps three kinds of state on the request path that limit or steer requests: the spend
ledger of limited keys (tally + reservations, ``gateway/spend.py``), the rate-limit windows of
keys with ``rpm``/``tpm``, and its backends' circuit breakers. One process keeps them in memory
(``local.py``, the default); replicas behind a load balancer share them in Redis (``redis_*.py``)
so a key's limits hold over all of them and a backend one replica found down is skipped by all.
:class:`SharedState` bundles the three for a gateway; ``open_shared`` picks the implementation
from the config's ``shared:``.

Why async admissions but a synchronous settle: admitting must know the answer before the request
goes on (a round trip to Redis when shared), while settling happens in ``Recorder.finish``, the one
place that finishes a request, which must not await between releasing the reservation and adding
the cost; a shared ledger does both in one atomic step it schedules from there.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from polyroute.config import KeyConfig
from polyroute.gateway.breaker import CircuitBreaker
from polyroute.gateway.errors import APIError
from polyroute.gateway.spend import Reservation
from polyroute.store import Store

#: Seconds in a rate-limit window (``rpm`` and ``tpm`` are per minute).
RATE_WINDOW = 60.0


class SpendLedger(ABC):
    """Spent dollars and in-flight reservations of limited keys; the rule is in ``spend.py``."""

    @abstractmethod
    def limits(self, key: KeyConfig | None) -> bool:
        """Whether ``key`` has a spend limit (so its requests need a reservation)."""

    @abstractmethod
    async def load(self, store: Store) -> None:
        """Seed the tallies from ``store`` at start (a shared ledger seeds only absent ones)."""

    @abstractmethod
    async def check(self, key: KeyConfig | None) -> None:
        """Raise 429 if ``key``'s spent + reserved dollars use up its limit."""

    @abstractmethod
    async def reserve(self, key: KeyConfig | None, amount: float) -> Reservation | None:
        """Hold ``amount`` for a request with the client's own cap, or raise 429."""

    @abstractmethod
    async def reserve_answer(self, key: KeyConfig | None, cost: Callable[[int], float],
                             ceiling: int) -> tuple[Reservation | None, int | None]:
        """Choose the gateway's answer cap for ``key``'s request and hold its cost, or 429."""

    @abstractmethod
    def settle(self, reservation: Reservation | None, key_id: str | None, cost: float) -> None:
        """A request finished: release its reservation and add its actual ``cost``, as one step."""

    async def close(self) -> None:
        """Finish what is pending (settles not yet written); the default has nothing."""
        return None


@dataclass(eq=False)
class RateCharge:
    """What one admitted request counted against its key's window: itself and ``tokens``."""

    key_id: str
    tokens: int
    settled: bool = False


def rate_refusal(key: KeyConfig, what: str, used: int, limit: int, retry_after: float
                 ) -> APIError:
    """The 429 a key over its ``rpm``/``tpm`` gets, with the seconds until its window ends."""
    return APIError(429, f"rate limit reached for key {key.id!r}: {used} of {limit} {what} "
                         f"this minute; retry in {math.ceil(retry_after)} s",
                    code="rate_limit_exceeded",
                    headers={"retry-after": str(max(1, math.ceil(retry_after)))})


class RateLimits(ABC):
    """Requests and tokens per minute per key, in fixed one-minute windows.

    Why a fixed window rather than a sliding one: it is exact and one counter pair per key (the
    same in memory and in one atomic Redis step), and its ``Retry-After`` is exact — the window's
    end, after which a refused client is admitted. The price is the boundary: a key may use its
    limit at the end of one window and again at the start of the next (at most twice the limit
    in any 60 s, never more than the limit in one window), which a sliding log avoids only by
    keeping every request's time.

    A request counts when admitted (its prompt's estimated tokens, with itself); when it
    finishes, the difference between its actual tokens (prompt + completion, from usage) and the
    estimate is added to the window current then. A request is admitted when the window has a
    request left and its tokens fit what is left of ``tpm`` — or when the window has used no
    tokens yet, so one prompt larger than ``tpm`` is not locked out forever.
    """

    @staticmethod
    def limits(key: KeyConfig | None) -> bool:
        return key is not None and (key.rpm is not None or key.tpm is not None)

    @abstractmethod
    async def admit(self, key: KeyConfig, tokens: int) -> RateCharge:
        """Count one request of ``key`` with ``tokens`` estimated, or raise 429 (Retry-After)."""

    @abstractmethod
    def settle(self, charge: RateCharge | None, tokens: int | None) -> None:
        """The request finished having used ``tokens`` (None: unknown, the estimate stands)."""


class BreakerSync(ABC):
    """Makes one replica's breaker transitions (open, closed) seen by the others."""

    @abstractmethod
    def attach(self, breakers: Iterable[tuple[str, CircuitBreaker]]) -> None:
        """Watch these backends' breakers (called once, before serving)."""

    async def start(self) -> None:
        """Begin listening for other replicas' transitions (nothing to do per process)."""
        return None

    async def close(self) -> None:
        """Stop listening."""
        return None


class LocalBreakers(BreakerSync):
    """Per process: each breaker sees only this process's requests (nothing to share)."""

    def attach(self, breakers: Iterable[tuple[str, CircuitBreaker]]) -> None:
        pass


class RouterSync:
    """Tells the other replicas of a router switch, and has this one follow theirs.

    Per process there is nobody to tell: every method does nothing."""

    async def start(self, identity: str, follow: Callable[[str], Awaitable[None]]) -> None:
        """``identity`` is the router this replica serves; ``follow(identity)`` is awaited when
        another replica publishes a switch (it reloads unless it already serves it)."""
        return None

    def published(self, identity: str) -> None:
        """This replica switched to ``identity`` (scheduled: the caller does not wait)."""
        return None

    async def close(self) -> None:
        return None


class FeedbackSync:
    """Shares online-learning updates: feedback taken by one replica teaches the others'
    routers (``redis_feedback.py``). Per process there is nobody to tell."""

    async def start(self, learn: Callable[[str, str, float], Awaitable[bool]]) -> None:
        """``learn(text, model, score)`` is awaited for each update another replica took."""
        return None

    def published(self, text: str, model: str, score: float) -> None:
        """This replica learnt from a feedback score (scheduled: the caller does not wait)."""
        return None

    async def close(self) -> None:
        return None


@dataclass
class SharedState:
    """The three kinds of cross-request state a gateway keeps, and where they live."""

    spend: SpendLedger
    rates: RateLimits
    breakers: BreakerSync
    #: For the start-up log and ``config check``: where the state lives (no password).
    where: str
    shared: bool
    router: RouterSync = field(default_factory=RouterSync)
    feedback: FeedbackSync = field(default_factory=FeedbackSync)

    async def start(self, store: Store) -> None:
        await self.spend.load(store)
        await self.breakers.start()

    async def close(self) -> None:
        await self.feedback.close()
        await self.router.close()
        await self.breakers.close()
        await self.spend.close()

    def pins(self) -> object | None:
        """A conversation ``PinStore`` every replica shares, or None (per process: the
        conversations' own, in the gateway's store). Call after :meth:`start`."""
        return None

    def describe(self) -> str:
        if self.shared:
            return (f"shared state: {self.where} — spend reservations and tallies, rate limits "
                    f"and breaker state are shared with every replica using it")
        return ("shared state: per-process (no `shared:` in the config) — spend limits, rate "
                "limits and circuit breakers hold for this process only; run one replica, or "
                "set `shared: redis://…` for several")

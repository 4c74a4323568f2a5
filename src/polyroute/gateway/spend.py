"""Per-key spend limits, checked before each request from an in-memory tally and reservations.

Why in memory: the check is on every request's path and must not query the database; the tally is
seeded from the store at start-up (one gateway process owns a store) and advanced as requests
finish. This is the per-process ledger; replicas share one in Redis instead
(``gateway/shared/redis_spend.py``), which keeps the same admission rule — and so the same
bound below — over every replica's reservations at once.

Why reservations: the tally only knows *finished* requests, so without them a key could start any
number of concurrent requests while it still had a cent left and overshoot its limit by all of
them. Instead each admitted request reserves an upper bound of its cost (see ``_reservation``
in ``chat.py``), the check counts *spent + reserved*, and when the request finishes — however
it finishes — its reservation is released and its actual cost added, in the one place that
finishes a request (``Recorder.finish`` in ``gateway/recorder.py``), with no await in between.

What bounds a request's cost is the length of its answer, so every reserved request carries a
``max_tokens`` upstream: the client's, or else one the gateway sets (:meth:`reserve_answer`) —
the largest number of tokens, at most the models' learnt answer-length ceiling
(``ceilings.py``), whose cost fits what the key has left (limit − spent − reserved by the
others). The reservation prices that cap (and the prompt) at the most expensive model that may
answer, so it is an upper bound of the cost, not a guess of it.

The admission rule, for both kinds: a key with nothing in flight may start a request whenever
its limit is not used up, exactly as without reservations — a sequential client could do as
much, and refusing a lone request on the client's own, often generous, ``max_tokens`` would lock
a key with a small remainder out of even cheap requests. A request that would run *alongside*
others must fit: spent + reserved + its own ≤ limit. The gateway's cap is chosen to fit; when
what is left pays for fewer than ``MIN_ANSWER_TOKENS`` the request is refused (429) if others
are in flight, and capped at ``MIN_ANSWER_TOKENS`` if it runs alone (not a stub answer).

Why no key ends over its limit by more than one request's reservation: let X = spent + reserved.
A finishing request lowers ``reserved`` by its reservation r and raises ``spent`` by its cost
c ≤ r, so X never grows then; X grows only at admission. An admission beside others must fit,
leaving X ≤ limit. A lone admission (nothing in flight, so X = spent < limit) leaves
X < limit + r. While X > limit nothing more is admitted: beside the lone request every
admission must keep X ≤ limit. So X < limit + (the largest reservation of a lone request) at
all times, and with nothing in flight X is the spend. That reservation is the client's
``max_tokens`` priced, or — gateway-capped — the cost of a ``MIN_ANSWER_TOKENS`` answer (a lone
request whose remainder pays for more fits, and does not overshoot at all). Where the bound is
only as good as its inputs: the prompt's tokens are estimated (chars / 4 over all messages and
tools), and a backend must honour ``max_tokens``.

All of it runs on the event loop (checks, reservations, releases), so no lock is needed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from polyroute.config import KeyConfig
from polyroute.gateway.errors import APIError
from polyroute.store import Store

#: The shortest answer worth starting for a limited key when the gateway sets ``max_tokens``:
#: a remainder that pays for fewer completion tokens is refused rather than spent on a stub.
MIN_ANSWER_TOKENS = 16


def period_start(period: str, now: float) -> float | None:
    """Unix time at which the current ``total``/``day``/``month`` period began (UTC)."""
    if period == "total":
        return None
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    start = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        start = start.replace(day=1)
    return start.timestamp()


def spend_refusal(key: KeyConfig, spent: float, reserved: float, held: int, extra: float = 0.0
                  ) -> APIError:
    """The 429 a limited key gets when a request does not fit (the same words per process or
    shared: ``held`` counts the key's in-flight requests on every replica that shares it)."""
    parts = f"${spent:.4f} spent + ${reserved:.4f} reserved by {held} in-flight request(s)"
    if extra:
        parts += f" + ${extra:.4f} reserved for this one"
    return APIError(429, f"spend limit reached for key {key.id!r}: {parts} of "
                         f"${key.spend_limit:.4f} this {key.spend_period} period "
                         f"(in-flight requests are counted)", code="spend_limit_exceeded")


def affordable_tokens(cost: Callable[[int], float], ceiling: int, left: float) -> int:
    """The largest answer cap, at most ``ceiling`` (raised to :data:`MIN_ANSWER_TOKENS`), whose
    ``cost`` fits ``left`` dollars; may be below :data:`MIN_ANSWER_TOKENS` (even 0), which the
    caller refuses or raises (``cost`` is non-decreasing, so bisection finds it)."""
    tokens = ceiling = max(ceiling, MIN_ANSWER_TOKENS)
    if cost(tokens) > left:  # the largest affordable cap, by bisection over [0, ceiling)
        lo, hi = 0, ceiling  # cost(lo) fits or lo == 0; cost(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if cost(mid) <= left else (lo, mid)
        tokens = lo
    return tokens


@dataclass(eq=False)
class Reservation:
    """Dollars held for one in-flight request of a limited key until it is released."""

    key_id: str
    amount: float
    released: bool = False


class SpendTracker:
    """Dollars spent per limited key in its current period."""

    def __init__(self, keys: Sequence[KeyConfig], clock: Callable[[], float] = time.time) -> None:
        self._keys = {k.id: k for k in keys if k.spend_limit is not None}
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._since: dict[str, float | None] = {}
        self._reserved: dict[str, float] = {}
        self._holds: dict[str, int] = {}

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
            # Reservations are not reset: their requests are still in flight.

    def limits(self, key: KeyConfig | None) -> bool:
        """Whether ``key`` has a spend limit (so its requests need a reservation)."""
        return key is not None and key.id in self._keys

    def _limited(self, key: KeyConfig | None) -> KeyConfig | None:
        """``key`` if it has a limit (its period rolled over when due), else None."""
        if key is None or not self.limits(key):
            return None
        self._roll(key)
        return key

    def _refuse(self, key: KeyConfig, spent: float, reserved: float, extra: float = 0.0
                ) -> APIError:
        return spend_refusal(key, spent, reserved, self._holds.get(key.id, 0), extra)

    def check(self, key: KeyConfig | None) -> None:
        """Raise 429 if ``key``'s spent plus reserved dollars use up its limit for the period
        (the cheap check before any routing work)."""
        key = self._limited(key)
        if key is None:
            return
        spent, reserved = self.spent(key.id), self.reserved(key.id)
        if spent + reserved >= key.spend_limit:  # type: ignore[operator]
            raise self._refuse(key, spent, reserved)

    def reserve(self, key: KeyConfig | None, amount: float) -> Reservation | None:
        """Hold ``amount`` dollars for a request of ``key`` until it finishes, or raise 429.

        Admitted when the limit is not used up and either nothing else of the key is in flight
        or spent + reserved + ``amount`` fits the limit (the rule in the module docstring).
        None for a key without a limit (nothing is held).
        """
        key = self._limited(key)
        if key is None or key.spend_limit is None:
            return None
        amount = max(float(amount), 0.0)
        spent, reserved = self.spent(key.id), self.reserved(key.id)
        if spent + reserved >= key.spend_limit or (
                self._holds.get(key.id, 0) and spent + reserved + amount > key.spend_limit):
            raise self._refuse(key, spent, reserved, amount)
        return self._hold(key, amount)

    def reserve_answer(self, key: KeyConfig | None, cost: Callable[[int], float],
                       ceiling: int) -> tuple[Reservation | None, int | None]:
        """Choose the ``max_tokens`` the gateway sends for a request of ``key`` and hold its cost.

        ``cost(tokens)`` is the request's cost bound with answers of at most ``tokens`` (non-
        decreasing in ``tokens``). The cap is the largest number of tokens, at most ``ceiling``
        (raised to :data:`MIN_ANSWER_TOKENS`), whose cost fits the key's remainder (limit − spent
        − reserved). When that is fewer than :data:`MIN_ANSWER_TOKENS`: 429 if others of the key
        are in flight, else (a lone request, the limit not used up) a minimal cap. (None, None)
        for a key without a limit: nothing is held and nothing capped.
        """
        key = self._limited(key)
        if key is None or key.spend_limit is None:
            return None, None
        spent, reserved = self.spent(key.id), self.reserved(key.id)
        left = key.spend_limit - spent - reserved
        if left <= 0:
            raise self._refuse(key, spent, reserved)
        tokens = affordable_tokens(cost, ceiling, left)
        if tokens < MIN_ANSWER_TOKENS:
            if self._holds.get(key.id, 0):
                raise self._refuse(key, spent, reserved, cost(MIN_ANSWER_TOKENS))
            tokens = MIN_ANSWER_TOKENS
        return self._hold(key, max(cost(tokens), 0.0)), tokens

    def _hold(self, key: KeyConfig, amount: float) -> Reservation:
        self._reserved[key.id] = self.reserved(key.id) + amount
        self._holds[key.id] = self._holds.get(key.id, 0) + 1
        return Reservation(key.id, amount)

    def release(self, reservation: Reservation | None) -> None:
        """Give back a reservation (a no-op for None or one already released)."""
        if reservation is None or reservation.released:
            return
        reservation.released = True
        key_id = reservation.key_id
        holds = self._holds.get(key_id, 0) - 1
        if holds <= 0:  # exact zero once nothing is in flight, whatever the float residue
            self._holds.pop(key_id, None)
            self._reserved.pop(key_id, None)
        else:
            self._holds[key_id] = holds
            self._reserved[key_id] = max(self._reserved.get(key_id, 0.0) - reservation.amount,
                                         0.0)

    def add(self, key_id: str | None, cost: float) -> None:
        """Add a finished request's actual cost to ``key_id``'s tally for the current period."""
        key = self._keys.get(key_id) if key_id else None
        if key is None or cost <= 0:
            return
        self._roll(key)
        self._spent[key.id] = self._spent.get(key.id, 0.0) + cost

    def spent(self, key_id: str) -> float:
        return self._spent.get(key_id, 0.0)

    def remaining(self, key_id: str) -> float | None:
        """Dollars ``key_id`` may still commit: limit − spent − reserved (None: no limit)."""
        key = self._keys.get(key_id)
        if key is None or key.spend_limit is None:
            return None
        return key.spend_limit - self.spent(key_id) - self.reserved(key_id)

    def reserved(self, key_id: str) -> float:
        """Dollars held by ``key_id``'s in-flight requests."""
        return self._reserved.get(key_id, 0.0)

    def in_flight(self, key_id: str) -> int:
        """How many of ``key_id``'s requests hold a reservation."""
        return self._holds.get(key_id, 0)

"""Whether a pinned conversation's new user turn should move to another model.

Moving throws the provider's prompt cache away: the conversation so far (its *prefix*) is read
again, cold, at the new model's full input price, where the pinned model would have read it at
its cached-input price. A move pays when the router's estimated gain, in the policy's own units
(quality − λ × cost / cost_scale, the trade-off score every policy ranks by), beats that loss
priced the same way::

    move to b  iff  score(b) − score(pinned) − λ × cache_loss(b) / cost_scale  >  min_gain

so at λ = 0 (quality only) any estimated quality gain moves the conversation, and the dearer
the prefix (long conversations, a large price gap between cached and fresh input) the larger
the gain a move must promise. Pure functions: the pinning stage and the session-pinning
benchmark call the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from polyroute.config import BackendConfig, ConversationsConfig
from polyroute.store import Candidate


@dataclass(frozen=True)
class CachePrices:
    """What reading a prompt costs on one backend, fresh and from its prompt cache ($/Mtok)."""

    input_price_per_mtok: float
    #: None: the backend caches nothing (every read is fresh).
    cached_input_price_per_mtok: float | None = None

    @classmethod
    def of(cls, backend: BackendConfig) -> CachePrices:
        return cls(backend.input_price_per_mtok, backend.cached_input_price_per_mtok)


@dataclass(frozen=True)
class CacheLossModel:
    """How a provider's prompt cache prices a conversation's prefix (see
    :class:`~polyroute.config.ConversationsConfig` for the parameters' meaning)."""

    min_cached_tokens: int = 1024
    hit_rate: float = 1.0
    write_multiplier: float = 1.0

    @classmethod
    def from_config(cls, config: ConversationsConfig) -> CacheLossModel:
        return cls(config.min_cached_tokens, config.hit_rate, config.write_multiplier)

    def prefix_cost(self, tokens: int, prices: CachePrices, *, warm: bool) -> float:
        """Dollars to read a prefix of ``tokens`` on a backend whose cache holds it (``warm``)
        or not (cold: read fresh, and written to its cache at ``write_multiplier``)."""
        fresh = tokens * prices.input_price_per_mtok / 1e6
        cached = prices.cached_input_price_per_mtok
        if cached is None or tokens < self.min_cached_tokens:
            return fresh
        if not warm:
            return fresh * self.write_multiplier
        return tokens * (self.hit_rate * cached
                         + (1 - self.hit_rate) * prices.input_price_per_mtok) / 1e6

    def loss(self, tokens: int, stay: CachePrices, move: CachePrices) -> float:
        """Dollars a move costs over staying, for the prefix alone (negative when the other
        model reads it cold for less than the pinned one reads it warm)."""
        return self.prefix_cost(tokens, move, warm=False) - \
            self.prefix_cost(tokens, stay, warm=True)


@dataclass(frozen=True)
class Verdict:
    """The outcome of weighing a move: the model to serve the turn on, and why."""

    model: str
    moved: bool
    reason: str
    #: The best alternative's score gain over the pinned model (quality points), its cache loss
    #: in dollars, and the gain in dollars (gain × cost_scale / λ; None at λ = 0: priceless).
    gain: float | None = None
    cache_loss_usd: float | None = None
    gain_usd: float | None = None
    alternative: str | None = None

    def detail(self) -> dict[str, object]:
        """What the record keeps of it."""
        out: dict[str, object] = {"reason": self.reason}
        for name in ("alternative", "gain", "gain_usd", "cache_loss_usd"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def _score(c: Candidate, lam: float, cost_scale: float) -> float | None:
    if c.estimated_quality is None:
        return None
    return float(c.estimated_quality) - lam * float(c.estimated_cost or 0.0) / cost_scale


def weigh(pinned: str, candidates: Sequence[Candidate], *, lam: float, cost_scale: float,
          prefix_tokens: int, prices: Mapping[str, CachePrices], cache: CacheLossModel,
          min_gain: float = 0.0) -> Verdict:
    """Keep the turn on ``pinned`` or move it to the candidate whose net gain (score gain minus
    the priced cache loss) is largest and above ``min_gain``.

    ``candidates`` are the router's ranked candidates for this turn, with estimates; a pinned
    model not among them (outside the profile's models now) cannot be weighed: the caller does
    not pin then. A candidate without a quality estimate is never moved to.
    """
    by_name = {c.model: c for c in candidates}
    here = by_name.get(pinned)
    keep_score = None if here is None else _score(here, lam, cost_scale)
    if keep_score is None:
        return Verdict(pinned, False, "no estimate for the pinned model: kept")
    best: tuple[float, Candidate, float, float] | None = None
    for c in candidates:
        score = _score(c, lam, cost_scale)
        if c.model == pinned or score is None or c.model not in prices:
            continue
        loss = cache.loss(prefix_tokens, prices[pinned], prices[c.model])
        net = score - keep_score - lam * loss / cost_scale
        if best is None or net > best[0]:
            best = (net, c, score - keep_score, loss)
    if best is None:
        return Verdict(pinned, False, "no other candidate: kept")
    net, alt, gain, loss = best
    gain_usd = gain * cost_scale / lam if lam > 0 else None
    common = {"gain": round(gain, 6), "cache_loss_usd": round(loss, 9),
              "gain_usd": None if gain_usd is None else round(gain_usd, 9),
              "alternative": alt.model}
    if net > min_gain:
        return Verdict(alt.model, True, f"moved to {alt.model}: estimated gain {gain:+.3f} "
                                        f"beats the cache loss of ${loss:.6f}", **common)
    return Verdict(pinned, False, f"kept {pinned}: the best move ({alt.model}, gain "
                                  f"{gain:+.3f}) does not pay for the cache loss of "
                                  f"${loss:.6f}", **common)


def cannot_pay(pinned: str, others: Sequence[str], costs: Mapping[str, float], *, lam: float,
               cost_scale: float, prefix_tokens: int, prices: Mapping[str, CachePrices],
               cache: CacheLossModel, min_gain: float = 0.0) -> bool:
    """Whether no move could pay whatever the router estimates, so the turn need not be embedded.

    Quality estimates lie in [0, 1], so a move gains at most ``1 − λ (c_b − c_p) / cost_scale``
    before the cache loss, with the turn's predicted costs ``costs`` (known from its length,
    without the encoder). When even that does not clear the loss and ``min_gain`` for every
    other model, the pin holds and the router is not asked.
    """
    if lam <= 0 or pinned not in costs or pinned not in prices:
        return False
    for b in others:
        if b == pinned or b not in costs or b not in prices:
            continue
        loss = cache.loss(prefix_tokens, prices[pinned], prices[b])
        best_case = 1.0 - lam * (costs[b] - costs[pinned]) / cost_scale \
            - lam * loss / cost_scale
        if not math.isfinite(best_case) or best_case > min_gain:
            return False
    return True

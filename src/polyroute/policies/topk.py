"""Top-k aggregate: send a prompt to a *set* of models and combine their answers.

The set is grown greedily per prompt while it improves

    value(S) = P(some member answers well) − λ × (Σ member costs + aggregator cost) / cost_scale,

so k is dynamic, the "null expert" idea from mixture-of-experts routing: a prompt one model is
confident about gets k = 1 (another member cannot raise the chance of success much), an uncertain
prompt gets more members. P(some member answers well) needs the members' joint behaviour, which a
router does not estimate; ``dependence`` interpolates between independent members
(1 − Π(1 − q̂), dependence = 0) and fully dependent ones (max q̂, dependence = 1).
Real models fail on the same prompts, so independence over-promises; :func:`fit_dependence`
measures the right value on held-out outcomes.

Offline a set is scored by its best member's recorded quality, i.e. as if the aggregator always
recognised the best answer (an upper bound; ``offline_quality="mean"`` gives a pessimistic bound),
and charged every member's recorded cost plus the aggregator's predicted cost.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from polyroute.errors import PolicyError
from polyroute.policies.base import order_by, require_cost, tradeoff_scores
from polyroute.routers.base import Estimates


def set_quality(fail_product: np.ndarray, best: np.ndarray, dependence: float) -> np.ndarray:
    """P(some member succeeds) from Π(1 − q̂) and max q̂ under the given ``dependence``."""
    independent = 1.0 - fail_product
    return best + (1.0 - dependence) * (independent - best)


def fit_dependence(estimates: Estimates, quality: np.ndarray) -> float:
    """The ``dependence`` in [0, 1] whose predicted best-of-pair quality fits recorded outcomes.

    Over every pair of models and every prompt, the recorded best-of-pair quality is regressed on
    the prediction max(q̂) + (1 − dependence) × (independent − max(q̂)) by least squares. Use
    estimates for prompts the router was *not* trained on, or the fit is flattered.
    """
    q_hat = estimates.quality
    if quality.shape != q_hat.shape:
        raise PolicyError(f"quality has shape {quality.shape}, expected {q_hat.shape}")
    m = q_hat.shape[1]
    num = den = 0.0
    for a in range(m):
        for b in range(a + 1, m):
            best = np.maximum(q_hat[:, a], q_hat[:, b])
            gap = 1.0 - (1.0 - q_hat[:, a]) * (1.0 - q_hat[:, b]) - best
            target = np.fmax(quality[:, a], quality[:, b])  # NaN only where both are unknown
            ok = ~np.isnan(target)
            num += float(np.sum((target[ok] - best[ok]) * gap[ok]))
            den += float(np.sum(gap[ok] ** 2))
    if den == 0:
        return 1.0
    return float(np.clip(1.0 - num / den, 0.0, 1.0))


@dataclass(frozen=True)
class SetDecision:
    """One prompt's set: call every member, aggregate when there is more than one answer.

    ``members`` are ordered by estimated quality (best first); ``fallbacks`` are the other models,
    best trade-off first, to replace a member that is unavailable.
    """

    members: tuple[str, ...]
    estimated_quality: float
    estimated_cost: float
    fallbacks: tuple[str, ...]
    aggregator: str | None = None
    policy: str = "topk"

    @property
    def aggregate(self) -> bool:
        return len(self.members) > 1

    @property
    def model(self) -> str:
        return self.members[0]

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.members + self.fallbacks


class TopKPolicy:
    """Greedy best set per prompt at trade-off weight ``lam`` (the knob), at most ``max_k`` models.

    ``aggregator_cost`` (dollars) is charged whenever a set has two or more members;
    ``aggregator`` names a model whose predicted cost is charged as well (the aggregation call's
    true cost is not recorded anywhere, so the prediction is used offline too).
    """

    name = "topk"

    def __init__(self, lam: float = 0.0, *, max_k: int = 3, dependence: float = 0.0,
                 aggregator_cost: float = 0.0, aggregator: str | None = None,
                 min_gain: float = 1e-9,
                 offline_quality: Literal["best", "mean"] = "best") -> None:
        if not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise PolicyError(f"the trade-off weight λ must be a number >= 0, got {lam!r}")
        if not isinstance(max_k, int) or max_k < 1:
            raise PolicyError(f"max_k must be an integer >= 1, got {max_k!r}")
        if not isinstance(dependence, (int, float)) or not 0 <= dependence <= 1:
            raise PolicyError(f"dependence must lie in [0, 1], got {dependence!r}")
        if not isinstance(aggregator_cost, (int, float)) or not aggregator_cost >= 0:
            raise PolicyError(f"aggregator_cost must be dollars >= 0, got {aggregator_cost!r}")
        if offline_quality not in ("best", "mean"):
            raise PolicyError(f"offline_quality must be 'best' or 'mean', got {offline_quality!r}")
        self.lam = float(lam)
        self.max_k = max_k
        self.dependence = float(dependence)
        self.aggregator_cost = float(aggregator_cost)
        self.aggregator = aggregator
        self.min_gain = float(min_gain)
        self.offline_quality = offline_quality

    def _aggregation_cost(self, estimates: Estimates, cost: np.ndarray) -> np.ndarray:
        extra = np.full(estimates.n_prompts, self.aggregator_cost)
        if self.aggregator is not None:
            if self.aggregator not in estimates.models:
                raise PolicyError(f"unknown aggregator model {self.aggregator!r}; known: "
                                  f"{', '.join(estimates.models)}")
            extra = extra + cost[:, estimates.models.index(self.aggregator)]
        return extra

    def select(self, estimates: Estimates) -> np.ndarray:
        """``(n, m)`` boolean mask of each prompt's chosen set (never empty)."""
        cost = require_cost(estimates)
        q = np.clip(estimates.quality, 0.0, 1.0)
        n, m = q.shape
        w = self.lam / estimates.cost_scale
        agg = self._aggregation_cost(estimates, cost)
        rows = np.arange(n)
        first = np.argmax(tradeoff_scores(estimates, self.lam), axis=1)
        chosen = np.zeros((n, m), dtype=bool)
        chosen[rows, first] = True
        fail = 1.0 - q[rows, first]
        best = q[rows, first]
        spent = cost[rows, first]
        value = best - w * spent
        for size in range(2, min(self.max_k, m) + 1):
            cand_q = set_quality(fail[:, None] * (1.0 - q), np.maximum(best[:, None], q),
                                 self.dependence)
            cand_cost = spent[:, None] + cost + agg[:, None] * (size == 2)
            cand = np.where(chosen, -np.inf, cand_q - w * cand_cost)
            j = np.argmax(cand, axis=1)
            gain = cand[rows, j] - value
            grow = gain > self.min_gain
            if not grow.any():
                break
            r = rows[grow]
            chosen[r, j[grow]] = True
            fail[r] *= 1.0 - q[r, j[grow]]
            best[r] = np.maximum(best[r], q[r, j[grow]])
            spent[r] = cand_cost[r, j[grow]]
            value[r] = cand[r, j[grow]]
        return chosen

    # -- the Policy protocol -----------------------------------------------------------------------
    def rank(self, estimates: Estimates) -> np.ndarray:
        """Members first (best estimate first), then the others by trade-off score."""
        chosen = self.select(estimates)
        position = np.argsort(order_by(tradeoff_scores(estimates, self.lam)), axis=1)
        within = np.where(chosen, -estimates.quality, position)
        return np.lexsort((within, ~chosen), axis=1)

    def choose(self, estimates: Estimates) -> np.ndarray:
        """The member with the best estimated quality (what a single call would use)."""
        return self.rank(estimates)[:, 0]

    def decide(self, estimates: Estimates) -> list[SetDecision]:
        """Per-prompt :class:`SetDecision` objects for the gateway and the CLI."""
        chosen = self.select(estimates)
        ranked = self.rank(estimates)
        cost = require_cost(estimates)
        agg = self._aggregation_cost(estimates, cost)
        q = np.clip(estimates.quality, 0.0, 1.0)
        out = []
        for i in range(estimates.n_prompts):
            k = int(chosen[i].sum())
            cols = ranked[i][:k]
            qq = q[i, cols]
            out.append(SetDecision(
                members=tuple(estimates.models[j] for j in cols),
                estimated_quality=float(set_quality(np.prod(1.0 - qq), qq.max(), self.dependence)),
                estimated_cost=float(cost[i, cols].sum() + (agg[i] if k > 1 else 0.0)),
                fallbacks=tuple(estimates.models[j] for j in ranked[i][k:]),
                aggregator=self.aggregator if k > 1 else None,
                policy=self.name,
            ))
        return out

    # -- offline evaluation ------------------------------------------------------------------------
    def simulate(self, estimates: Estimates, quality: np.ndarray,
                 cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-prompt recorded (quality, cost): best (or mean) member, every member charged."""
        chosen = self.select(estimates)
        agg = self._aggregation_cost(estimates, require_cost(estimates))
        masked = np.where(chosen, quality, np.nan)
        with warnings.catch_warnings():  # a set whose members are all unknown gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            got = np.nanmax(masked, axis=1) if self.offline_quality == "best" \
                else np.nanmean(masked, axis=1)
        paid = np.where(chosen, cost, 0.0).sum(axis=1) + np.where(chosen.sum(axis=1) > 1, agg, 0.0)
        return got, paid

"""The policy contract: estimates (quality and predicted cost) in, a choice per prompt out.

Policies are pure functions of their inputs. ``rank`` orders all candidates best-first for each
prompt (the gateway's fallback order); ``choose`` is its first column, possibly computed jointly
over a batch (a budget is a batch-level constraint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from polyroute.errors import PolicyError
from polyroute.routers.base import Estimates


class Policy(Protocol):
    name: str

    def rank(self, estimates: Estimates) -> np.ndarray:
        """``(n, m)`` column indices per prompt, best candidate first."""
        ...

    def choose(self, estimates: Estimates) -> np.ndarray:
        """``(n,)`` chosen column index per prompt."""
        ...


def require_cost(estimates: Estimates) -> np.ndarray:
    if estimates.cost is None:
        raise PolicyError("these estimates carry no predicted cost; build them with a Pipeline")
    return estimates.cost


def tradeoff_scores(estimates: Estimates, lam: float) -> np.ndarray:
    """quality − λ × cost / cost_scale: λ is the quality one gives up to save ``cost_scale``."""
    return estimates.quality - lam * require_cost(estimates) / estimates.cost_scale


def order_by(scores: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
    """Columns sorted by descending score; ``first`` (per row) is moved to the front."""
    order = np.argsort(-scores, axis=1, kind="stable")
    if first is None:
        return order
    rest = order[order != first[:, None]].reshape(order.shape[0], -1)
    return np.concatenate([first[:, None], rest], axis=1)


@dataclass(frozen=True)
class Decision:
    """One prompt's routing decision: candidates best-first (the rest are fallbacks)."""

    candidates: tuple[str, ...]
    estimated_quality: dict[str, float]
    estimated_cost: dict[str, float]
    policy: str

    @property
    def model(self) -> str:
        return self.candidates[0]


def decisions(estimates: Estimates, policy: Policy) -> list[Decision]:
    """Per-prompt :class:`Decision` objects (what the CLI prints and the gateway logs)."""
    order = policy.rank(estimates)
    cost = require_cost(estimates)
    out = []
    for i, row in enumerate(order):
        out.append(Decision(
            candidates=tuple(estimates.models[j] for j in row),
            estimated_quality={m: float(estimates.quality[i, j])
                               for j, m in enumerate(estimates.models)},
            estimated_cost={m: float(cost[i, j]) for j, m in enumerate(estimates.models)},
            policy=policy.name,
        ))
    return out

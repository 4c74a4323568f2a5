"""Budget: the best expected quality for a batch subject to mean cost per prompt <= B.

Solved through its Lagrangian: the trade-off policy with the smallest λ whose batch mean cost is
within budget (found by bisection on log λ). The knapsack relaxation is tight up to one prompt.
"""

from __future__ import annotations

import math

import numpy as np

from polyroute.errors import PolicyError
from polyroute.policies.base import order_by, require_cost, tradeoff_scores
from polyroute.routers.base import Estimates


def _mean_cost(estimates: Estimates, cost: np.ndarray, lam: float) -> float:
    pick = np.argmax(tradeoff_scores(estimates, lam), axis=1)
    return float(cost[np.arange(len(pick)), pick].mean())


def lambda_for_budget(estimates: Estimates, budget: float, iterations: int = 60) -> float:
    """Smallest λ whose choices cost at most ``budget`` per prompt on average (inf if none)."""
    cost = require_cost(estimates)
    if _mean_cost(estimates, cost, 0.0) <= budget:
        return 0.0
    lo, hi = -12.0, 12.0  # log10 λ
    if _mean_cost(estimates, cost, 10 ** hi) > budget:
        return math.inf
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if _mean_cost(estimates, cost, 10 ** mid) <= budget:
            hi = mid
        else:
            lo = mid
    return 10 ** hi


class BudgetPolicy:
    """``budget`` in dollars per prompt, averaged over the batch passed to ``choose``."""

    name = "budget"

    def __init__(self, budget: float) -> None:
        if not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget < 0:
            raise PolicyError(f"the budget must be a number of dollars >= 0, got {budget!r}")
        self.budget = float(budget)

    def _scores(self, estimates: Estimates) -> np.ndarray:
        lam = lambda_for_budget(estimates, self.budget)
        if math.isinf(lam):  # infeasible: the cheapest model everywhere is the best we can do
            return -require_cost(estimates)
        return tradeoff_scores(estimates, lam)

    def rank(self, estimates: Estimates) -> np.ndarray:
        return order_by(self._scores(estimates))

    def choose(self, estimates: Estimates) -> np.ndarray:
        return np.argmax(self._scores(estimates), axis=1)

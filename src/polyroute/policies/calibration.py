"""Calibrate λ so that a chosen share of traffic goes to the expensive models.

RouteLLM calibrates a threshold so that e.g. 20 % of calls reach the strong model; with N models
"strong" is a set (by default, the models priced above the median), and the knob is λ.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from polyroute.errors import PolicyError
from polyroute.policies.base import require_cost, tradeoff_scores
from polyroute.routers.base import Estimates


def expensive_share(estimates: Estimates, lam: float, expensive: np.ndarray) -> float:
    pick = np.argmax(tradeoff_scores(estimates, lam), axis=1)
    return float(np.mean(expensive[pick]))


def calibrate_lambda(estimates: Estimates, share: float,
                     expensive: Iterable[str] | None = None, iterations: int = 60) -> float:
    """λ at which about ``share`` of the sample's prompts are sent to an ``expensive`` model."""
    if not 0 <= share <= 1:
        raise PolicyError(f"the traffic share must lie in [0, 1], got {share}")
    cost = require_cost(estimates)
    if expensive is None:
        mean_cost = cost.mean(axis=0)
        mask = mean_cost > np.median(mean_cost)
    else:
        names = set(expensive)
        unknown = names - set(estimates.models)
        if unknown:
            names_list = ", ".join(sorted(unknown))
            raise PolicyError(f"unknown model(s) in the expensive set: {names_list}")
        mask = np.array([m in names for m in estimates.models])
    lo, hi = -6.0, 6.0  # log10 λ; the share falls as λ grows
    if expensive_share(estimates, 0.0, mask) <= share:
        return 0.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if expensive_share(estimates, 10 ** mid, mask) > share:
            lo = mid
        else:
            hi = mid
    return 10 ** hi

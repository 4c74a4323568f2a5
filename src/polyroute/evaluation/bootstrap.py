"""Paired bootstrap of an AIQ difference: how sure is "router A beats router B" on one test set?

Some protocols give one number and no spread (leave-task-out with every held-out estimate scored
together, or a single train/test split). Resampling the test prompts with replacement and scoring
both routers on the *same* resample measures how much their AIQ difference owes to which prompts
happened to be in the test set; the std of the resampled differences is the spread to compare the
difference with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polyroute.evaluation.hull import aiq, pareto_hull
from polyroute.evaluation.metrics import Reference
from polyroute.evaluation.sweep import DEFAULT_LAMBDAS, single_model_points, sweep_points
from polyroute.policies import TradeoffPolicy
from polyroute.routers.base import Estimates


def aiq_of(estimates: Estimates, quality: np.ndarray, cost: np.ndarray,
           policies: list[Any] | None = None) -> float:
    """AIQ of a router's estimates on recorded outcomes, budgets from the single models."""
    policies = policies if policies is not None else [TradeoffPolicy(lam)
                                                      for lam in DEFAULT_LAMBDAS]
    ref = Reference.from_single_models(single_model_points(quality, cost), estimates.models)
    points = sweep_points(estimates, quality, cost, policies)
    return aiq(pareto_hull(points), ref.c_min, ref.c_max)


def paired_bootstrap(a: Estimates, b: Estimates, quality: np.ndarray, cost: np.ndarray, *,
                     n_resamples: int = 200, random_state: int = 0) -> dict[str, float]:
    """AIQ(a) − AIQ(b) on the prompts as given, and its mean, std and share above zero over
    ``n_resamples`` resamples of the prompts (the same resample for both routers)."""
    if a.quality.shape != b.quality.shape or a.quality.shape != quality.shape:
        raise ValueError("both estimates and the outcomes must cover the same prompts and models")
    policies = [TradeoffPolicy(lam) for lam in DEFAULT_LAMBDAS]
    rng = np.random.default_rng(random_state)
    n = quality.shape[0]
    diffs = np.empty(n_resamples)
    for i in range(n_resamples):
        rows = rng.integers(0, n, n)
        diffs[i] = (aiq_of(a.subset(rows), quality[rows], cost[rows], policies)
                    - aiq_of(b.subset(rows), quality[rows], cost[rows], policies))
    return {"difference": aiq_of(a, quality, cost, policies) - aiq_of(b, quality, cost, policies),
            "mean": float(diffs.mean()), "std": float(diffs.std(ddof=1)),
            "share_positive": float((diffs > 0).mean()), "resamples": n_resamples}

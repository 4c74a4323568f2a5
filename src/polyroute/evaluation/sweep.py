"""Operating points: run a policy family over a range of its knob and score the decisions.

Honest by construction: decisions see only the estimates (made from the prompt and training data);
scoring then charges the *recorded* quality and cost of whatever was chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from polyroute.errors import PolicyError
from polyroute.policies import CascadePolicy, TopKPolicy, TradeoffPolicy
from polyroute.routers.base import Estimates

#: λ = 0 (best quality whatever the cost) plus a wide geometric range.
DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, *np.geomspace(1e-3, 1e3, 61).tolist())


def score_choices(choice: np.ndarray, quality: np.ndarray,
                  cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt recorded quality and cost of the chosen columns."""
    rows = np.arange(len(choice))
    return quality[rows, choice], cost[rows, choice]


def simulate(policy: Any, estimates: Estimates, quality: np.ndarray,
             cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt (quality, cost) a policy obtains on recorded outcomes.

    Policies that call several models (cascades, ensembles) define ``simulate`` themselves so that
    every model they call is charged; single-choice policies are scored by their choice.
    """
    if hasattr(policy, "simulate"):
        return policy.simulate(estimates, quality, cost)
    return score_choices(policy.choose(estimates), quality, cost)


def operating_points(
    estimates: Estimates, quality: np.ndarray, cost: np.ndarray,
    make_policy: Callable[[float], Any] = TradeoffPolicy,
    knobs: Sequence[float] = DEFAULT_LAMBDAS,
) -> np.ndarray:
    """``(len(knobs), 2)`` array of (mean cost, mean quality) over the prompts, one per knob."""
    return sweep_points(estimates, quality, cost, [make_policy(k) for k in knobs])


def _coarse_lambdas() -> list[float]:
    return [0.0, *np.geomspace(1e-3, 1e3, 19).tolist()]


#: Policy families ``polyroute evaluate --policy`` can sweep; each maps to the list of policy
#: settings whose operating points make up its curve.
POLICY_SWEEPS: dict[str, Callable[[], list[Any]]] = {
    "tradeoff": lambda: [TradeoffPolicy(lam) for lam in DEFAULT_LAMBDAS],
    "cascade": lambda: [CascadePolicy(t, lam=lam, max_calls=2)
                        for t in (0.3, 0.5, 0.7, 0.9) for lam in _coarse_lambdas()],
    "topk": lambda: [TopKPolicy(lam, max_k=3) for lam in DEFAULT_LAMBDAS],
}


def policy_sweep(name: str) -> list[Any]:
    """The policy settings swept for the family ``name``."""
    if name not in POLICY_SWEEPS:
        raise PolicyError(f"unknown policy {name!r}; choose from: {', '.join(POLICY_SWEEPS)}")
    return POLICY_SWEEPS[name]()


def sweep_points(estimates: Estimates, quality: np.ndarray, cost: np.ndarray,
                 policies: Sequence[Any]) -> np.ndarray:
    """(mean cost, mean quality) of each policy setting, scored on recorded outcomes."""
    points = np.empty((len(policies), 2))
    for i, policy in enumerate(policies):
        q, c = simulate(policy, estimates, quality, cost)
        with np.errstate(invalid="ignore"):
            points[i] = (np.nanmean(c), np.nanmean(q))
    return points


def single_model_points(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(mean cost, mean quality) of always using each model: the zero router's points."""
    with np.errstate(invalid="ignore"):
        return np.stack([np.nanmean(cost, axis=0), np.nanmean(quality, axis=0)], axis=1)

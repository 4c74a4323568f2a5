"""Routing metrics read off a cost–quality hull, relative to the single models on the same data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polyroute.evaluation.hull import aiq, cost_to_reach, pareto_hull

CPT_LEVELS = (0.5, 0.8, 0.95)


@dataclass(frozen=True)
class Reference:
    """What every router on one test set is measured against.

    ``c_min``/``c_max`` are the cheapest and priciest single model's mean cost (the AIQ budget
    range); the best single model is the one with the highest mean quality.
    """

    c_min: float
    c_max: float
    best_single_quality: float
    best_single_cost: float
    best_single_model: str

    @classmethod
    def from_single_models(cls, points: np.ndarray, names: tuple[str, ...]) -> Reference:
        best = int(np.nanargmax(points[:, 1]))
        return cls(float(np.nanmin(points[:, 0])), float(np.nanmax(points[:, 0])),
                   float(points[best, 1]), float(points[best, 0]), names[best])


def summarize(points: np.ndarray, ref: Reference) -> dict[str, Any]:
    """AIQ, best quality and its cost, CPT(x) for x in 50/80/95 %, and the points themselves."""
    hull = pareto_hull(points)
    best = int(np.argmax(hull[:, 1]))
    out: dict[str, Any] = {
        "aiq": aiq(hull, ref.c_min, ref.c_max),
        "best_quality": float(hull[best, 1]),
        "best_quality_cost": float(hull[best, 0]),
    }
    for level in CPT_LEVELS:
        c = cost_to_reach(hull, level * ref.best_single_quality)
        out[f"cpt{round(level * 100)}"] = None if c is None else c / ref.best_single_cost
    out["points"] = np.asarray(points).tolist()
    out["hull"] = hull.tolist()
    return out


def add_gain_share(result: dict[str, Any], zero_aiq: float, oracle_aiq: float) -> None:
    """Share of the oracle's AIQ gain over the zero router that a router captures."""
    span = oracle_aiq - zero_aiq
    result["oracle_gain_share"] = (result["aiq"] - zero_aiq) / span if span > 0 else None

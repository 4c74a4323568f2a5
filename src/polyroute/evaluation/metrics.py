"""Routing metrics read off a cost–quality hull, relative to the single models on the same data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polyroute.evaluation.hull import aiq, cost_to_reach, pareto_hull

#: CPTx for these x. On real data the cheapest model alone often reaches 50 % or even 80 % of the
#: best single model's quality (86 % on the bundled data), so those levels give every router the
#: same number; 90 %, 95 % and 100 % (the cost of matching the best single model) separate them.
CPT_LEVELS = (0.5, 0.8, 0.9, 0.95, 1.0)


def cpt_key(level: float) -> str:
    """The metrics key of CPT at ``level`` (``cpt50`` … ``cpt100``)."""
    return f"cpt{round(level * 100)}"


@dataclass(frozen=True)
class Reference:
    """What every router on one test set is measured against.

    ``c_min``/``c_max`` are the cheapest and priciest single model's mean cost (the AIQ budget
    range); the best single model is the one with the highest mean quality. The cheapest single
    model (the best of them if several cost ``c_min``) tells which CPT levels it reaches alone:
    those cost every router the same, since every sweep ends at the cheapest model.
    """

    c_min: float
    c_max: float
    best_single_quality: float
    best_single_cost: float
    best_single_model: str
    cheapest_single_quality: float | None = None
    cheapest_single_model: str | None = None

    @classmethod
    def from_single_models(cls, points: np.ndarray, names: tuple[str, ...]) -> Reference:
        best = int(np.nanargmax(points[:, 1]))
        cheapest = cheapest_single(points)
        return cls(float(np.nanmin(points[:, 0])), float(np.nanmax(points[:, 0])),
                   float(points[best, 1]), float(points[best, 0]), names[best],
                   float(points[cheapest, 1]), names[cheapest])


def cheapest_single(points: np.ndarray) -> int:
    """Index of the cheapest single model; among equally cheap ones, the best."""
    points = np.asarray(points, dtype=float)
    tied = np.flatnonzero(points[:, 0] <= np.nanmin(points[:, 0]))
    return int(tied[np.nanargmax(points[tied, 1])])


def summarize(points: np.ndarray, ref: Reference) -> dict[str, Any]:
    """AIQ, best quality and its cost, CPT(x) for x in :data:`CPT_LEVELS`, and the points."""
    hull = pareto_hull(points)
    best = int(np.argmax(hull[:, 1]))
    out: dict[str, Any] = {
        "aiq": aiq(hull, ref.c_min, ref.c_max),
        "best_quality": float(hull[best, 1]),
        "best_quality_cost": float(hull[best, 0]),
    }
    for level in CPT_LEVELS:
        c = cost_to_reach(hull, level * ref.best_single_quality)
        out[cpt_key(level)] = None if c is None else c / ref.best_single_cost
    out["points"] = np.asarray(points).tolist()
    out["hull"] = hull.tolist()
    return out


def add_gain_share(result: dict[str, Any], zero_aiq: float, oracle_aiq: float) -> None:
    """Share of the oracle's AIQ gain over the zero router that a router captures."""
    span = oracle_aiq - zero_aiq
    result["oracle_gain_share"] = (result["aiq"] - zero_aiq) / span if span > 0 else None

"""Cost–quality hull and AIQ: the shared maths of routing evaluation (RouterBench's definitions).

A router swept over its trade-off weight gives operating points (mean cost, mean quality). Mixing
two operating points at random reaches any point on the segment between them, so what a router
*can* deliver is the upper convex hull of its points, made non-decreasing (paying more never has to
buy less). AIQ averages that hull's quality over a range of budgets.
"""

from __future__ import annotations

import numpy as np

#: Budgets at which the hull is read to compute AIQ.
AIQ_BUDGETS = 201


def pareto_hull(points: np.ndarray) -> np.ndarray:
    """Non-decreasing upper convex hull of ``(cost, quality)`` points, sorted by cost."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = pts[~np.isnan(pts).any(axis=1)]
    if len(pts) == 0:
        return pts
    # Sort by cost, best quality first among equal costs; keep only points that improve quality.
    pts = pts[np.lexsort((-pts[:, 1], pts[:, 0]))]
    frontier = [pts[0]]
    for p in pts[1:]:
        if p[1] > frontier[-1][1]:
            frontier.append(p)
    hull: list[np.ndarray] = []
    for p in frontier:  # monotone chain, upper side: drop points below the new chord
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return np.array(hull)


def hull_quality_at(hull: np.ndarray, costs: np.ndarray | float) -> np.ndarray:
    """Hull quality at each budget: 0 below its cheapest point, flat past its dearest one."""
    costs = np.atleast_1d(np.asarray(costs, dtype=float))
    if len(hull) == 0:
        return np.zeros_like(costs)
    out = np.interp(costs, hull[:, 0], hull[:, 1])
    out[costs < hull[0, 0]] = 0.0
    return out


def aiq(hull: np.ndarray, c_min: float, c_max: float, n: int = AIQ_BUDGETS) -> float:
    """Mean hull quality over ``n`` evenly spaced budgets in [c_min, c_max]."""
    if c_max < c_min:
        raise ValueError(f"c_max ({c_max}) is below c_min ({c_min})")
    return float(hull_quality_at(hull, np.linspace(c_min, c_max, n)).mean())


def cost_to_reach(hull: np.ndarray, quality: float) -> float | None:
    """Least budget at which the hull reaches ``quality`` (None if it never does)."""
    if len(hull) == 0 or hull[-1, 1] < quality:
        return None
    if hull[0, 1] >= quality:
        return float(hull[0, 0])
    j = int(np.argmax(hull[:, 1] >= quality))
    (x1, y1), (x2, y2) = hull[j - 1], hull[j]
    return float(x1 + (quality - y1) * (x2 - x1) / (y2 - y1))

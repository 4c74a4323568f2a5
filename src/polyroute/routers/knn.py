"""Cosine k-nearest-neighbours: a prompt is as hard for each model as its closest training prompts.

The literature's strongest simple router. ``k`` is chosen by cross-validation on the training data
(lowest squared error of the estimated qualities), so no tuning is left to the user.
"""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.routers.base import Router
from polyroute.routers.params import POSITIVE_INT, RANDOM_STATE, Interval, Items
from polyroute.routers.registry import register

_K_GRID = (5, 10, 20, 40, 80, 160)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _neighbour_mean(sims: np.ndarray, quality: np.ndarray, k: int,
                    fallback: np.ndarray | None = None) -> np.ndarray:
    """Mean known quality of each row's ``k`` most similar training prompts; where none is
    known, ``fallback`` (default: each model's mean known quality over ``quality``)."""
    k = min(k, quality.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    neigh = quality[top]  # (n, k, m)
    known = ~np.isnan(neigh)
    total = np.where(known, neigh, 0.0).sum(axis=1)
    count = known.sum(axis=1)
    if fallback is None:
        fallback = np.nanmean(quality, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), fallback[None, :])


@register("knn")
class KNNRouter(Router):
    """``k=None`` picks k from ``k_grid`` by ``cv``-fold cross-validation at fit time."""

    _parameter_constraints = {"k": Interval(int, 1, none=True), "k_grid": Items(POSITIVE_INT),
                              "cv": Interval(int, 2), "random_state": RANDOM_STATE}

    def __init__(self, k: int | None = None, k_grid: tuple[int, ...] = _K_GRID, cv: int = 5,
                 random_state: int = 0) -> None:
        self.k = k
        self.k_grid = k_grid
        self.cv = cv
        self.random_state = random_state

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        x = _normalise(features)
        q = np.asarray(outcomes.quality, dtype=np.float64)
        self.k_ = int(self.k) if self.k is not None else self._choose_k(x, q)
        self.train_features_ = x.astype(np.float32)
        self.train_quality_ = q

    def _choose_k(self, x: np.ndarray, q: np.ndarray) -> int:
        n = x.shape[0]
        grid = [k for k in self.k_grid if k < n * (1 - 1 / self.cv)] or [1]
        folds = np.array_split(np.random.default_rng(self.random_state).permutation(n), self.cv)
        errors = np.zeros(len(grid))
        for fold in folds:
            mask = np.ones(n, dtype=bool)
            mask[fold] = False
            sims = x[fold] @ x[mask].T
            for g, k in enumerate(grid):
                pred = _neighbour_mean(sims, q[mask], k)
                errors[g] += np.nansum((pred - q[fold]) ** 2)
        return int(grid[int(np.argmin(errors))])

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        sims = _normalise(features) @ self.train_features_.T
        return _neighbour_mean(sims, self.train_quality_, self.k_, self._fallback()), None

    def _fallback(self) -> np.ndarray:
        """Each model's mean known training quality, computed once per fitted state: a NaN-aware
        mean over the whole training matrix was a sixth of a gateway decision's CPU."""
        cached = getattr(self, "_fallback_cache", None)
        if cached is None or cached[0] is not self.train_quality_:
            cached = (self.train_quality_, np.nanmean(self.train_quality_, axis=0))
            self._fallback_cache = cached
        return cached[1]

"""Cosine k-nearest-neighbours: a prompt is as hard for each model as its closest training prompts.

The literature's strongest simple router. ``k`` is chosen by cross-validation on the training data
(lowest squared error of the estimated qualities), so no tuning is left to the user.

At the size of a busy gateway's log (10⁵-10⁶ prompts) the neighbours come from an HNSW graph
(``index``) and k is chosen on a sample of held-out prompts (``cv_sample``), see ``_choose_k``.
"""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.neighbours import INDEX_KINDS, NeighbourIndex, exact_top_k, unit_rows
from polyroute.routers.base import Router
from polyroute.routers.params import POSITIVE_INT, RANDOM_STATE, Interval, Items, Options
from polyroute.routers.registry import register

_K_GRID = (5, 10, 20, 40, 80, 160)


def _neighbour_means(rows: np.ndarray, valid: np.ndarray, quality: np.ndarray,
                     ks: list[int], fallback: np.ndarray | None = None) -> list[np.ndarray]:
    """For each k in ``ks``: the mean known quality of each query's first ``k`` neighbours
    (``rows`` nearest first, ``valid`` marking real entries); ``fallback`` (default: the
    training mean, an O(rows) pass) where none of them is known. One pass over the neighbours
    gives every k (cumulative sums)."""
    neigh = quality[np.where(valid, rows, 0)]  # (n, width, m)
    known = ~np.isnan(neigh) & valid[:, :, None]
    total = np.cumsum(np.where(known, neigh, 0.0), axis=1)
    count = np.cumsum(known, axis=1)
    if fallback is None:
        fallback = np.nanmean(quality, axis=0)
    out = []
    for k in ks:
        c = min(k, rows.shape[1]) - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(count[:, c] > 0, total[:, c] / np.maximum(count[:, c], 1),
                                fallback[None, :]))
    return out


@register("knn")
class KNNRouter(Router):
    """``k=None`` picks k from ``k_grid`` by ``cv``-fold cross-validation at fit time.

    ``index`` says how neighbours are found (see :mod:`polyroute.neighbours`): ``auto`` searches
    exactly while the training vectors hold at most ``EXACT_UP_TO`` floats (rows × dim; ~10,000
    MiniLM prompts) and through an HNSW graph above, ``exact``
    and ``hnsw`` force one. ``cv_sample`` caps the prompts whose held-out error chooses k.
    """

    _parameter_constraints = {"k": Interval(int, 1, none=True), "k_grid": Items(POSITIVE_INT),
                              "cv": Interval(int, 2), "cv_sample": POSITIVE_INT,
                              "index": Options(*INDEX_KINDS), "random_state": RANDOM_STATE}

    def __init__(self, k: int | None = None, k_grid: tuple[int, ...] = _K_GRID, cv: int = 5,
                 cv_sample: int = 5000, index: str = "auto", random_state: int = 0) -> None:
        self.k = k
        self.k_grid = k_grid
        self.cv = cv
        self.cv_sample = cv_sample
        self.index = index
        self.random_state = random_state

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        self.train_features_ = unit_rows(features)
        self.train_quality_ = np.asarray(outcomes.quality, dtype=np.float64)
        self._train_mean = None  # recomputed from this fit's outcomes
        self._index = NeighbourIndex(self.train_features_, kind=self.index)
        self.k_ = (int(self.k) if self.k is not None
                   else self._choose_k(self.train_features_, self.train_quality_))

    def _after_load(self) -> None:
        # The graph is derived from the saved vectors, never saved itself (see save()).
        self._index = NeighbourIndex(self.train_features_, kind=self.index)

    def _fallback(self) -> np.ndarray:
        """Per-model training mean, computed once: a decision must not pass over every row."""
        mean = getattr(self, "_train_mean", None)
        if mean is None:
            with np.errstate(invalid="ignore"):
                mean = self._train_mean = np.nanmean(self.train_quality_, axis=0)
        return mean

    def _search(self) -> NeighbourIndex:
        index = getattr(self, "_index", None)
        if index is None or not index.serves(self.index):  # ``index`` changed since fit
            index = self._index = NeighbourIndex(self.train_features_, kind=self.index)
        return index

    def _choose_k(self, x: np.ndarray, q: np.ndarray) -> int:
        """The k of ``k_grid`` with the lowest held-out squared error.

        Each prompt is assigned to one of ``cv`` folds; its neighbours are searched among the
        prompts of the other folds. Above ``cv_sample`` prompts only a seeded sample of them is
        scored (the neighbours are still searched in the whole training set), so the cost is
        ``cv_sample`` searches, not an ``n × n`` similarity matrix. Exact search scores each
        fold against the other folds' rows; the graph, built once over all rows, is asked for
        more neighbours than needed and those of the prompt's own fold are dropped.
        """
        n = x.shape[0]
        grid = [k for k in self.k_grid if k < n * (1 - 1 / self.cv)] or [1]
        rng = np.random.default_rng(self.random_state)
        folds = np.array_split(rng.permutation(n), self.cv)
        fold_of = np.empty(n, dtype=np.int64)
        for f, fold in enumerate(folds):
            fold_of[fold] = f
        scored = np.ones(n, dtype=bool)
        if n > self.cv_sample:
            scored[:] = False
            scored[rng.choice(n, size=self.cv_sample, replace=False)] = True
        index = self._search()
        widest = max(grid)
        errors = np.zeros(len(grid))
        for f, fold in enumerate(folds):
            held = np.sort(fold[scored[fold]])
            if held.size == 0:
                continue
            if index.approximate:
                # About 1/cv of the graph's answers are of the held-out fold: ask for extra.
                want = min(n, int(np.ceil(widest * self.cv / (self.cv - 1))) + 2 * self.cv + 8)
                rows, valid = index.search(x[held], want)
                valid &= fold_of[np.where(valid, rows, 0)] != f
                order = np.argsort(~valid, axis=1, kind="stable")[:, :widest]
                rows = np.take_along_axis(rows, order, axis=1)
                valid = np.take_along_axis(valid, order, axis=1)
            else:
                others = np.flatnonzero(fold_of != f)
                local, _ = exact_top_k(x[others], x[held], widest)
                rows, valid = others[local], np.ones(local.shape, dtype=bool)
            with np.errstate(invalid="ignore"):
                fold_mean = np.nanmean(q[fold_of != f], axis=0)  # the held-out rows excluded
            for g, pred in enumerate(_neighbour_means(rows, valid, q, grid, fold_mean)):
                errors[g] += np.nansum((pred - q[held]) ** 2)
        return int(grid[int(np.argmin(errors))])

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        rows, valid = self._search().search(unit_rows(features), self.k_)
        return _neighbour_means(rows, valid, self.train_quality_, [self.k_],
                                self._fallback())[0], None

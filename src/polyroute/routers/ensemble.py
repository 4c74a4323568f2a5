"""Stacking: several routers' estimates combined per model, with weights learned out of fold.

Different routers make different mistakes (kNN is local, k-means clusters are coarse but shrunk,
ridge regression is global and smooth), so a weighted mix estimates quality better than any one of
them, and better estimates buy better routing at every trade-off. The weights must be learned on
estimates the base routers made for prompts they did *not* train on: an inner K-fold over the
training prompts gives such out-of-fold estimates, the stacker is fitted on them, and the base
routers are then refitted on all the training prompts.

Stackers (per model ``m``, on the known cells of its column):

* ``nnls``: ``q = b_m + Σ_r w_rm · est_r`` with non-negative ``w`` (least squares). Non-negative
  weights cannot flip a router's opinion, which keeps the stack from over-fitting its noise.
* ``nnls-shared``: the same but one weight vector for all models (per-model intercepts).
* ``logistic``: ``q = sigmoid(b_m + Σ_r w_rm · logit(est_r))``, non-negative ``w``, fitted by
  cross-entropy; also recalibrates routers whose estimates are too timid or too bold.

``inner_split="task"`` groups the inner folds by task label, so the weights are learned on prompts
of tasks the base routers have not seen.

Defaults, from the bundled data (benchmarks/routing_quality.py): kNN + k-means clusters, logistic
stacker, 3 inner folds. kNN is the best local estimate; the clusters, shrunk towards each model's
mean, are the most robust on tasks unseen in training; adding ridge, MLP, MF or IRT estimates
gained at most ~0.001 AIQ in cross-validation and lost ~0.005 on held-out tasks (they are
confidently wrong on new tasks), at several times the cost. Task-grouped inner folds were worse on
held-out tasks too (five task groups give noisy weights). 3 inner folds stacked as well as 5.
On the ``minilm-layers`` featurizer the same stack is the best router measured, both in
cross-validation and on held-out tasks scored together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.errors import RouterError
from polyroute.routers.base import Router, observed_mean
from polyroute.routers.params import RANDOM_STATE, Constraint, Instance, Interval, Options
from polyroute.routers.registry import get_router_class, make_router, register

STACKERS = ("nnls", "nnls-shared", "logistic")
INNER_SPLITS = ("random", "task")
_EPS = 1e-3  # estimates are clipped to [eps, 1 - eps] before taking logits


class BaseRouterNames(Constraint):
    """Names of distinct registered routers that can be stacked (not an ensemble, not one that
    reads the true outcomes)."""

    def accepts(self, value: Any) -> bool:
        return self.problem("base", value) is None

    def describe(self) -> str:
        return "a non-empty list of distinct router names"

    def problem(self, param: str, value: Any) -> str | None:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return f"{param} must be {self.describe()}, got {value!r}"
        if not value:
            return f"{param} names no router to combine"
        if len(set(value)) != len(value):
            return f"{param} names a router twice: {list(value)}"
        for name in value:
            try:
                cls = get_router_class(name)
            except RouterError as exc:
                return f"{param}: {exc}"
            if issubclass(cls, EnsembleRouter) or cls.evaluation_only:
                return f"{param}: {name!r} cannot be a base router"
        return None


@register("ensemble")
class EnsembleRouter(Router):
    """Stack the routers named in ``base`` (built through the registry, with ``base_params[name]``
    as their hyper-parameters) by ``stacker`` fitted on ``cv``-fold out-of-fold estimates."""

    _parameter_constraints = {
        "base": BaseRouterNames(),
        "base_params": Instance(dict, what="a mapping of base router names to their parameters",
                                none=True),
        "cv": Interval(int, 2), "stacker": Options(*STACKERS),
        "inner_split": Options(*INNER_SPLITS), "random_state": RANDOM_STATE,
    }

    def __init__(self, base: tuple[str, ...] = ("knn", "cluster"),
                 base_params: dict[str, dict[str, Any]] | None = None, cv: int = 3,
                 stacker: str = "logistic", inner_split: str = "random",
                 random_state: int = 0) -> None:
        self.base = base
        self.base_params = base_params
        self.cv = cv
        self.stacker = stacker
        self.inner_split = inner_split
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------
    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        names = self._check_params(outcomes.n_prompts)
        q = outcomes.quality
        oof = np.zeros((len(names), *q.shape))
        for fold in self._inner_folds(outcomes):
            train = np.ones(outcomes.n_prompts, dtype=bool)
            train[fold] = False
            inner = outcomes.subset(train)
            if np.all(np.isnan(inner.quality)):
                raise RouterError("ensemble: an inner fold has no known quality cell; "
                                  "lower cv or add data")
            for r, name in enumerate(names):
                router = self._make(name).fit(inner, features[train])
                est = router.estimate(features[fold]).select_models(outcomes.model_names)
                oof[r, fold] = est.quality
        self.weights_, self.intercept_ = _fit_stacker(self.stacker, oof, q)
        routers = [self._make(name).fit(outcomes, features) for name in names]
        self.base_names_ = names
        self._store_bases(routers)

    def _check_params(self, n_prompts: int) -> list[str]:
        """What the declared constraints cannot see: one parameter against another, or the
        data."""
        names = list(self.base)
        unknown = set(self.base_params or {}) - set(names)
        if unknown:
            raise RouterError(f"ensemble: base_params for routers not in base: "
                              f"{', '.join(sorted(unknown))}")
        if self.cv > n_prompts:
            raise RouterError(f"ensemble: cv must be an integer between 2 and the number of "
                              f"training prompts ({n_prompts}), got {self.cv!r}")
        return names

    def _make(self, name: str) -> Router:
        return make_router(name, **(self.base_params or {}).get(name, {}))

    def _inner_folds(self, outcomes: Outcomes) -> list[np.ndarray]:
        """Row indices of each inner fold (by task if asked and there are at least two)."""
        rng = np.random.default_rng(self.random_state)
        tasks = outcomes.task_names
        if self.inner_split == "task" and len(tasks) >= 2:
            labels = np.asarray(outcomes.tasks)
            groups = np.array_split(rng.permutation(len(tasks)), min(self.cv, len(tasks)))
            return [np.flatnonzero(np.isin(labels, [tasks[i] for i in g])) for g in groups]
        return np.array_split(rng.permutation(outcomes.n_prompts), self.cv)

    # -- the fitted base routers, kept as flat learned attributes (saved without pickle) ---------
    def _store_bases(self, routers: list[Router]) -> None:
        for i, router in enumerate(routers):
            for key, value in router._learned_attributes().items():
                setattr(self, f"base{i}__{key}", value)
        self._routers = routers

    def base_routers(self) -> list[Router]:
        """The fitted base routers, in the order of ``base``."""
        self._check_fitted()
        if getattr(self, "_routers", None) is None:  # freshly loaded: rebuild from the state
            routers = []
            for i, name in enumerate(self.base_names_):
                router = self._make(name)
                prefix = f"base{i}__"
                for key, value in vars(self).items():
                    if key.startswith(prefix):
                        setattr(router, key[len(prefix):], value)
                routers.append(router)
            self._routers = routers
        return self._routers

    # -- estimating ----------------------------------------------------------------------------
    def base_estimates(self, features: np.ndarray) -> np.ndarray:
        """``(n_base, n, m)`` quality estimates of every base router."""
        return np.stack([r.estimate(features).select_models(self.models_).quality
                         for r in self.base_routers()])

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return _apply_stacker(self.stacker, np.asarray(self.weights_),
                              np.asarray(self.intercept_), self.base_estimates(features)), None


# -- stackers -------------------------------------------------------------------------------------
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _apply_stacker(kind: str, weights: np.ndarray, intercept: np.ndarray,
                   estimates: np.ndarray) -> np.ndarray:
    """Combine ``(R, n, m)`` estimates with ``(m, R)`` weights and ``(m,)`` intercepts."""
    inputs = _logit(estimates) if kind == "logistic" else estimates
    z = np.einsum("rnm,mr->nm", inputs, weights) + intercept[None, :]
    return 1.0 / (1.0 + np.exp(-z)) if kind == "logistic" else z


def _fit_stacker(kind: str, oof: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Weights ``(m, R)`` and intercepts ``(m,)`` from out-of-fold estimates ``(R, n, m)``."""
    n_base, _, m = oof.shape
    weights = np.zeros((m, n_base))
    intercept = observed_mean(quality)  # a model never observed keeps the overall mean
    known = ~np.isnan(quality)
    if kind == "nnls-shared":
        cols = [j for j in range(m) if known[:, j].any()]
        x = np.concatenate([oof[:, known[:, j], j].T - oof[:, known[:, j], j].mean(axis=1)
                            for j in cols])
        y = np.concatenate([quality[known[:, j], j] - quality[known[:, j], j].mean()
                            for j in cols])
        w = _nnls(x, y)
        for j in cols:
            weights[j] = w
            intercept[j] = quality[known[:, j], j].mean() - oof[:, known[:, j], j].mean(axis=1) @ w
        return weights, intercept
    for j in range(m):
        rows = known[:, j]
        if rows.sum() < 2:
            continue
        x, y = oof[:, rows, j].T, quality[rows, j]
        if kind == "nnls":
            mean_x, mean_y = x.mean(axis=0), y.mean()
            weights[j] = _nnls(x - mean_x, y - mean_y)
            intercept[j] = mean_y - mean_x @ weights[j]
        else:
            weights[j], intercept[j] = _nonnegative_logistic(_logit(x), y)
    return weights, intercept


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(x, y)[0]


def _nonnegative_logistic(x: np.ndarray, y: np.ndarray,
                          penalty: float = 1.0) -> tuple[np.ndarray, float]:
    """Cross-entropy fit of sigmoid(x·w + b) to soft labels ``y`` with ``w >= 0``.

    A ridge ``penalty`` (in units of one prompt's loss) keeps the weights finite when some
    estimates separate the outcomes perfectly (small or clean training sets); on thousands of
    prompts it is negligible.
    """
    from scipy.optimize import minimize

    n, r = x.shape

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w = params[:r]
        z = x @ w + params[r]
        # log(1 + e^z) - y z, written to stay finite for large |z|
        value = np.mean(np.logaddexp(0.0, z) - y * z) + penalty * (w @ w) / n
        g = (1.0 / (1.0 + np.exp(-z)) - y) / n
        return float(value), np.append(x.T @ g + 2 * penalty * w / n, g.sum())

    start = np.append(np.full(r, 1.0 / r), 0.0)
    res = minimize(loss, start, jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * r + [(None, None)])
    return res.x[:r], float(res.x[r])

"""A contextual bandit that learns from partial feedback: only the chosen model's outcome is seen.

This is the router for a gateway that learns while it serves. The context is the prompt embedding
reduced by a PCA learned once (at :meth:`BanditRouter.fit` or :meth:`BanditRouter.start`),
whitened, plus a constant. Quality is a Bayesian linear regression on it with *shared* and
*per-model* weights::

    quality(x, m) = z(x) · (w_shared + w_m)

The shared part matters under partial feedback: most of what decides whether an answer is right
is how hard the prompt is, which is the same for every model, so every observed outcome, whatever
model produced it, teaches all models' estimates (independent per-model regressions would need
each model to be tried on every kind of prompt). ``arm_scale`` sets how far a model may deviate
from the shared weights a priori. Each outcome updates the posterior in O(context² × models)
(:meth:`BanditRouter.learn_one`, river style).

The preference λ is part of the decision, as in BaRP, but not of the regression: the reward is
``quality − λ · cost / cost_scale`` and the cost is predicted before the call, so only the quality
has to be learned. One quality model then serves every λ (a policy network taking λ as input, as
BaRP trains, would spend samples learning the known cost term). :meth:`BanditRouter.select`
explores with an upper confidence bound (LinUCB) or a posterior sample (Thompson sampling, per
model's marginal) on the quality, minus the known cost term.

``estimate`` returns the posterior mean quality and its standard deviation, so policies and
evaluation use the bandit like any other router; ``fit`` on a full outcome table learns every
known cell (full information), the upper reference for what partial feedback can reach.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.errors import RouterError
from polyroute.routers.base import Router
from polyroute.routers.params import (
    NON_NEGATIVE,
    POSITIVE,
    RANDOM_STATE,
    UNIT,
    Interval,
    Options,
)
from polyroute.routers.registry import register

EXPLORATION = ("ucb", "thompson")


@register("bandit")
class BanditRouter(Router):
    """LinUCB / linear Thompson sampling on a ``n_components``-dimensional PCA context.

    ``ridge`` is the prior precision of the shared weights (prior mean: quality
    ``prior_quality`` everywhere); a model's own weights have ``arm_scale`` times their prior
    standard deviation. ``noise`` is the assumed standard deviation of one observed quality,
    which scales the posterior; ``alpha`` multiplies the posterior standard deviation in the UCB
    bonus (and the spread of Thompson samples); ``alpha=0`` is greedy.
    """

    learns_online = True
    _parameter_constraints = {"n_components": Interval(int, 0), "ridge": POSITIVE,
                              "arm_scale": POSITIVE, "noise": POSITIVE, "alpha": NON_NEGATIVE,
                              "prior_quality": UNIT, "exploration": Options(*EXPLORATION),
                              "random_state": RANDOM_STATE}

    def __init__(self, n_components: int = 32, ridge: float = 1.0, arm_scale: float = 1.0,
                 noise: float = 0.4, alpha: float = 1.0, prior_quality: float = 0.5,
                 exploration: str = "ucb", random_state: int = 0) -> None:
        self.n_components = n_components
        self.ridge = ridge
        self.arm_scale = arm_scale
        self.noise = noise
        self.alpha = alpha
        self.prior_quality = prior_quality
        self.exploration = exploration
        self.random_state = random_state

    # -- set-up ----------------------------------------------------------------------------------
    def start(self, models: Sequence[str], features: np.ndarray) -> BanditRouter:
        """Begin with no outcome at all: learn the context projection from ``features`` (prompts
        without answers, e.g. recent traffic) and start from the prior."""
        models = list(models)
        if not models or len(set(models)) != len(models) or not all(
                isinstance(m, str) and m for m in models):
            raise RouterError(f"start: models must be distinct non-empty names, got {models!r}")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or len(features) < 2:
            raise RouterError(f"start: features have shape {features.shape}, expected (n >= 2, "
                              f"dim)")
        self._validate_params()
        self.models_ = models
        self.n_features_in_ = int(features.shape[1])
        self._learn_projection(features)
        self._reset()
        return self

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        self._learn_projection(features)
        self._reset()
        z = self._context(features)
        p = z.shape[1]
        precision = np.linalg.inv(self.covariance_)
        for j in range(len(self.models_)):
            known = ~np.isnan(outcomes.quality[:, j])
            gram = z[known].T @ z[known]
            zy = z[known].T @ outcomes.quality[known, j]
            for a in (0, j + 1):  # the blocks this model's feature vector touches
                self.moment_[a * p:(a + 1) * p] += zy
                for b in (0, j + 1):
                    precision[a * p:(a + 1) * p, b * p:(b + 1) * p] += gram
            self.count_[j] += int(known.sum())
        self.covariance_ = np.linalg.inv(precision)

    def _learn_projection(self, features: np.ndarray) -> None:
        """Centre, keep the top principal directions, scale each to unit variance."""
        x = np.asarray(features, dtype=np.float64)
        self.center_ = x.mean(axis=0)
        k = min(self.n_components, x.shape[1], len(x) - 1)
        if k <= 0:
            self.projection_ = np.zeros((x.shape[1], 0))
            return
        _, s, vt = np.linalg.svd(x - self.center_, full_matrices=False)
        # Directions with (almost) no variance would be blown up by whitening into huge context
        # values for new prompts: keep only those above a small share of the largest.
        k = max(1, min(k, int(np.sum(s > 1e-5 * s[0])) if s[0] > 0 else 1))
        scale = s[:k] / np.sqrt(len(x) - 1)
        self.projection_ = vt[:k].T / np.maximum(scale, 1e-12)[None, :]

    def _reset(self) -> None:
        """The prior: weights [shared, model 1, ..., model m], each block one context wide."""
        p = self.projection_.shape[1] + 1
        m = len(self.models_)
        variance = np.concatenate([np.full(p, 1.0 / self.ridge),
                                   np.full(m * p, self.arm_scale ** 2 / self.ridge)])
        prior_mean = np.zeros(p * (m + 1))
        prior_mean[0] = self.prior_quality
        self.covariance_ = np.diag(variance)
        self.moment_ = prior_mean / variance  # precision × mean: the prior as pseudo-data
        self.count_ = [0] * m

    def _context(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        z = (x - self.center_) @ self.projection_
        return np.hstack([np.ones((len(z), 1)), z])

    # -- online learning ---------------------------------------------------------------------------
    def learn_one(self, features_row: np.ndarray, model: str, quality: float) -> None:
        """Update with one observed ``quality`` of ``model`` on a prompt (NaN = no information)."""
        self._check_fitted()
        j = self._model_index(model)
        x = self._row(features_row, "learn_one")
        if quality is None or np.isnan(quality):
            return
        if not 0.0 <= float(quality) <= 1.0:
            raise RouterError(f"learn_one: quality must lie in [0, 1], got {quality!r}")
        z = self._context(x)[0]
        p = len(z)
        blocks = np.r_[0:p, (j + 1) * p:(j + 2) * p]  # where this model's feature vector lives
        cz = self.covariance_[:, blocks] @ np.concatenate([z, z])  # Σ φ
        self.covariance_ -= np.outer(cz, cz) / (1.0 + cz[blocks] @ np.concatenate([z, z]))
        self.moment_[blocks] += float(quality) * np.concatenate([z, z])
        self.count_[j] = int(self.count_[j]) + 1

    def select(self, features_row: np.ndarray, lam: float, cost_row: np.ndarray,
               cost_scale: float = 1.0) -> int:
        """Column of the model to try for one prompt: optimistic (UCB) or sampled (Thompson)
        quality minus ``lam × cost / cost_scale``, with the predicted ``cost_row``."""
        self._check_fitted()
        x = self._row(features_row, "select")
        cost = np.asarray(cost_row, dtype=np.float64).reshape(-1)
        if cost.shape != (len(self.models_),):
            raise RouterError(f"select: cost_row has {cost.size} values for "
                              f"{len(self.models_)} models")
        if not np.isfinite(lam) or lam < 0 or cost_scale <= 0:
            raise RouterError("select: lam must be >= 0 and cost_scale > 0")
        mean, var = self._posterior(x)
        sd = self.alpha * self.noise * np.sqrt(var[0])
        if self.exploration == "ucb":
            quality = mean[0] + sd
        else:
            quality = mean[0] + sd * self._generator().standard_normal(len(sd))
        return int(np.argmax(quality - lam * cost / cost_scale))

    def _generator(self) -> np.random.Generator:
        if getattr(self, "_rng", None) is None:
            self._rng = np.random.default_rng(self.random_state)
        return self._rng

    def _model_index(self, model: str) -> int:
        try:
            return self.models_.index(model)
        except ValueError:
            raise RouterError(f"unknown model {model!r}; this router knows: "
                              f"{', '.join(self.models_)}") from None

    def _row(self, features_row: np.ndarray, where: str) -> np.ndarray:
        x = np.asarray(features_row, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape != (1, self.n_features_in_):
            raise RouterError(f"{where}: features_row has shape {np.shape(features_row)}, "
                              f"expected ({self.n_features_in_},)")
        return x

    # -- estimating ------------------------------------------------------------------------------
    def _posterior(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance (in units of noise²) of every model's quality."""
        z = self._context(features)
        n, p = z.shape
        m = len(self.models_)
        weights = self.covariance_ @ self.moment_
        w = weights.reshape(m + 1, p)
        mean = z @ (w[0][:, None] + w[1:].T)
        cov = self.covariance_.reshape(m + 1, p, m + 1, p)
        var = np.empty((n, m))
        for j in range(m):  # φ' Σ φ with φ = z in the shared block and in block j + 1
            block = cov[0, :, 0] + cov[0, :, j + 1] + cov[j + 1, :, 0] + cov[j + 1, :, j + 1]
            var[:, j] = np.einsum("ni,ij,nj->n", z, block, z)
        return mean, np.maximum(var, 0.0)

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self._posterior(features)
        return mean, self.noise * np.sqrt(var)

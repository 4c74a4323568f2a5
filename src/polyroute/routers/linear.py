"""Ridge regression of each model's quality on the prompt embedding (regularisation by CV)."""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.routers.base import Router
from polyroute.routers.params import POSITIVE, Items
from polyroute.routers.registry import register


@register("linear")
class LinearRouter(Router):
    """One ridge regressor per model on the rows where that model's quality is known."""

    _parameter_constraints = {"alphas": Items(POSITIVE)}

    def __init__(self, alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)) -> None:
        self.alphas = alphas

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        from sklearn.linear_model import RidgeCV

        q = outcomes.quality
        m = q.shape[1]
        self.coef_ = np.zeros((features.shape[1], m), dtype=np.float64)
        self.intercept_ = np.zeros(m)
        complete = ~np.isnan(q).any(axis=1)
        if complete.all():  # one multi-output fit shares the work
            reg = RidgeCV(alphas=self.alphas).fit(features, q)
            self.coef_[:] = reg.coef_.T
            self.intercept_[:] = reg.intercept_
            return
        for j in range(m):
            rows = ~np.isnan(q[:, j])
            if rows.sum() < 2:
                self.intercept_[j] = np.nanmean(q) if rows.sum() == 0 else q[rows, j].mean()
                continue
            reg = RidgeCV(alphas=self.alphas).fit(features[rows], q[rows, j])
            self.coef_[:, j] = reg.coef_
            self.intercept_[j] = reg.intercept_

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return features @ self.coef_ + self.intercept_, None

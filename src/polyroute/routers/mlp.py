"""A small multi-output neural network from prompt embedding to every model's quality."""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.routers.base import Router, impute_missing
from polyroute.routers.params import NON_NEGATIVE, POSITIVE_INT, RANDOM_STATE, Items
from polyroute.routers.registry import register


@register("mlp")
class MLPRouter(Router):
    """scikit-learn's MLPRegressor with early stopping; unknown cells are filled with the model's
    mean before training (the network needs a complete target matrix)."""

    _parameter_constraints = {"hidden": Items(POSITIVE_INT), "alpha": NON_NEGATIVE,
                              "max_iter": POSITIVE_INT, "random_state": RANDOM_STATE}

    def __init__(self, hidden: tuple[int, ...] = (128,), alpha: float = 1e-3,
                 max_iter: int = 300, random_state: int = 0) -> None:
        self.hidden = hidden
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        from sklearn.neural_network import MLPRegressor

        net = MLPRegressor(hidden_layer_sizes=tuple(self.hidden), alpha=self.alpha,
                           max_iter=self.max_iter, early_stopping=len(features) >= 50,
                           n_iter_no_change=15, random_state=self.random_state)
        net.fit(features, impute_missing(outcomes.quality))
        # Keep plain arrays so that the router saves without pickle and predicts without sklearn.
        self.weights_ = [w.astype(np.float32) for w in net.coefs_]
        self.biases_ = [b.astype(np.float32) for b in net.intercepts_]

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        h = features
        for w, b in zip(self.weights_[:-1], self.biases_[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        out = h @ self.weights_[-1] + self.biases_[-1]
        return out.reshape(features.shape[0], -1).astype(np.float64), None

"""Best quality-for-cost: argmax over models of (estimated quality − λ × normalised cost)."""

from __future__ import annotations

import math

import numpy as np

from polyroute.errors import PolicyError
from polyroute.policies.base import order_by, tradeoff_scores
from polyroute.routers.base import Estimates


class TradeoffPolicy:
    """``lam`` = 0 wants the best model whatever it costs; larger values buy cheaper ones."""

    name = "tradeoff"

    def __init__(self, lam: float = 0.0) -> None:
        if not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise PolicyError(f"the trade-off weight λ must be a number >= 0, got {lam!r}")
        self.lam = float(lam)

    def rank(self, estimates: Estimates) -> np.ndarray:
        return order_by(tradeoff_scores(estimates, self.lam))

    def choose(self, estimates: Estimates) -> np.ndarray:
        return np.argmax(tradeoff_scores(estimates, self.lam), axis=1)

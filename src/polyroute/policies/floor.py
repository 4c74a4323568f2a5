"""Quality floor: the cheapest model whose estimated quality reaches the floor."""

from __future__ import annotations

import numpy as np

from polyroute.errors import PolicyError
from polyroute.policies.base import order_by, require_cost
from polyroute.routers.base import Estimates


class FloorPolicy:
    """Cheapest model with estimated quality >= ``floor``; if none reaches it, the best one.

    Fallbacks after the choice are the other models that reach the floor (cheapest first), then
    the rest by estimated quality.
    """

    name = "floor"

    def __init__(self, floor: float) -> None:
        if not isinstance(floor, (int, float)) or not 0 <= floor <= 1:
            raise PolicyError(f"the quality floor must lie in [0, 1], got {floor!r}")
        self.floor = float(floor)

    def _scores(self, estimates: Estimates) -> np.ndarray:
        cost = require_cost(estimates)
        ok = estimates.quality >= self.floor
        # Models above the floor rank by cheapness (all above every model below the floor);
        # below the floor they rank by quality.
        cheap = 2.0 + 1.0 / (1.0 + cost / estimates.cost_scale)
        return np.where(ok, cheap, estimates.quality)

    def rank(self, estimates: Estimates) -> np.ndarray:
        return order_by(self._scores(estimates))

    def choose(self, estimates: Estimates) -> np.ndarray:
        return np.argmax(self._scores(estimates), axis=1)

"""Reference routers every learned router must beat (and the oracle, which cannot be beaten)."""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.errors import RouterError
from polyroute.routers.base import Router, observed_mean
from polyroute.routers.params import RANDOM_STATE
from polyroute.routers.registry import register


@register("random")
class RandomRouter(Router):
    """Uniform random quality guesses: under any trade-off it picks models at random."""

    _parameter_constraints = {"random_state": RANDOM_STATE}

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        pass

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        rng = np.random.default_rng(self.random_state)
        return rng.random((features.shape[0], len(self.models_))), None


@register("best-single")
class BestSingleRouter(Router):
    """Each model's mean training quality, the same for every prompt.

    Swept over the trade-off weight, it walks through the single models: the zero router.
    """

    def __init__(self) -> None:
        pass

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        self.mean_quality_ = observed_mean(outcomes.quality)

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return np.tile(self.mean_quality_, (features.shape[0], 1)), None


@register("cheapest")
class CheapestRouter(Router):
    """Always the cheapest model by list price (ties broken by a hair of estimated quality)."""

    def __init__(self) -> None:
        pass

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        price = np.array([m.input_price_per_mtok + m.output_price_per_mtok
                          for m in outcomes.models])
        rank = np.argsort(np.argsort(price, kind="stable"), kind="stable")
        self.preference_ = 0.5 - 1e-6 * rank.astype(float)

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return np.tile(self.preference_, (features.shape[0], 1)), None


@register("oracle")
class OracleRouter(Router):
    """Reads the *true* outcomes of the prompts it will be asked about. Evaluation only.

    ``fit`` must be given the test outcomes, and ``estimate`` the features of exactly those
    prompts in the same order; its estimates are then the true qualities.
    """

    evaluation_only = True

    def __init__(self) -> None:
        pass

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        self.quality_ = np.where(np.isnan(outcomes.quality), 0.0, outcomes.quality)
        self.n_rows_ = outcomes.n_prompts

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        if features.shape[0] != self.n_rows_:
            raise RouterError("the oracle estimates only the prompts it was fitted on")
        return self.quality_.copy(), None

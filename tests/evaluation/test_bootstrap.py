"""The paired bootstrap of AIQ differences, on the two-cluster world."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.evaluation import aiq_of, leave_task_out_evaluation, paired_bootstrap
from polyroute.routers import Estimates


def _estimates(test, quality: np.ndarray) -> Estimates:
    return Estimates(models=test.outcomes.model_names, quality=quality, cost=test.outcomes.cost)


def test_aiq_of_matches_the_runner(two_cluster_split) -> None:
    from polyroute.evaluation import score_estimates

    _, test = two_cluster_split
    q, c = test.outcomes.quality, test.outcomes.cost
    noisy = np.clip(q + np.random.default_rng(0).normal(0, 0.3, q.shape), 0, 1)
    est = _estimates(test, noisy)
    expected = score_estimates({"r": est}, test.outcomes)["routers"]["r"]["aiq"]
    assert aiq_of(est, q, c) == pytest.approx(expected)


def test_knowing_the_outcomes_beats_a_constant_guess_on_every_resample(two_cluster_split) -> None:
    _, test = two_cluster_split
    q, c = test.outcomes.quality, test.outcomes.cost
    oracle = _estimates(test, q)
    constant = _estimates(test, np.tile(q.mean(axis=0), (q.shape[0], 1)))
    out = paired_bootstrap(oracle, constant, q, c, n_resamples=30)
    assert out["difference"] > 0.05
    assert out["share_positive"] == 1.0 and out["resamples"] == 30
    assert out["std"] > 0  # the resamples differ
    same = paired_bootstrap(oracle, oracle, q, c, n_resamples=10)
    assert same["difference"] == 0 and same["std"] == 0 and same["share_positive"] == 0


def test_bootstrap_needs_the_same_prompts(two_cluster_split) -> None:
    _, test = two_cluster_split
    q, c = test.outcomes.quality, test.outcomes.cost
    est = _estimates(test, q)
    with pytest.raises(ValueError, match="same prompts"):
        paired_bootstrap(est, est.subset(np.arange(5)), q, c)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_leave_task_out_can_keep_its_pooled_estimates(two_cluster_factory) -> None:
    world = two_cluster_factory(10)
    result = leave_task_out_evaluation(world.outcomes, ["best-single", "knn"], "tfidf",
                                       keep_estimates=True)
    held = result["held_out"]
    assert held.n_prompts == world.outcomes.n_prompts
    for name in ("best-single", "knn"):
        est = result["estimates"][name]
        assert est.quality.shape == held.quality.shape
        assert aiq_of(est, held.quality, held.cost) == pytest.approx(
            result["routers"][name]["aiq"])
    assert "estimates" not in leave_task_out_evaluation(world.outcomes, ["knn"], "tfidf")

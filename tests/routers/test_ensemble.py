"""Stacked ensemble: out-of-fold weights trust informative routers, ignore useless ones, and the
combination of two independent noisy estimates beats either."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyroute.errors import RouterError
from polyroute.routers import Router, make_router
from polyroute.routers.ensemble import _apply_stacker, _fit_stacker

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def planted(n: int = 4000, m: int = 2, seed: int = 0) -> np.ndarray:
    """True per-cell success probabilities and sampled 0/1 outcomes."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, size=(n, m))
    return p, (rng.random((n, m)) < p).astype(float)


@pytest.mark.parametrize("stacker", ["nnls", "nnls-shared", "logistic"])
def test_useless_estimates_get_no_weight(stacker: str) -> None:
    p, q = planted()
    rng = np.random.default_rng(1)
    oof = np.stack([p, rng.uniform(0.05, 0.95, p.shape)])  # the truth, and pure noise
    weights, _ = _fit_stacker(stacker, oof, q)
    assert np.all(weights[:, 1] < 0.05 * weights[:, 0])
    est = _apply_stacker(stacker, weights, _fit_stacker(stacker, oof, q)[1], oof)
    assert np.mean(np.abs(est - p)) < 0.03


def test_nnls_recalibrates_a_timid_router() -> None:
    p, q = planted()
    timid = 0.25 + 0.5 * p  # right ordering, half the spread
    weights, intercept = _fit_stacker("nnls", timid[None], q)
    np.testing.assert_allclose(weights[:, 0], 2.0, atol=0.1)
    np.testing.assert_allclose(intercept, -0.5, atol=0.06)


def test_two_independent_noisy_routers_beat_either() -> None:
    p, q = planted(n=6000)
    rng = np.random.default_rng(2)
    oof = np.stack([p + rng.normal(0, 0.15, p.shape), p + rng.normal(0, 0.15, p.shape)])
    weights, intercept = _fit_stacker("nnls", oof, q)
    # Equally good, independent: about equal weights (each shrunk a little for its noise).
    assert np.all(weights > 0.3) and np.all(np.abs(weights[:, 0] - weights[:, 1]) < 0.15)
    est = _apply_stacker("nnls", weights, intercept, oof)
    assert np.mean((est - p) ** 2) < 0.7 * min(np.mean((o - p) ** 2) for o in oof)


def test_unknown_cells_are_left_out_of_the_stacker() -> None:
    p, q = planted()
    q[::3, 0] = np.nan
    weights, intercept = _fit_stacker("nnls", p[None], q)
    assert np.all(np.isfinite(weights)) and np.all(np.isfinite(intercept))
    np.testing.assert_allclose(weights[:, 0], 1.0, atol=0.1)


def test_ensemble_finds_the_planted_answer_and_ignores_a_random_router(two_cluster_split):
    train, test = two_cluster_split
    router = make_router("ensemble", base=("knn", "random", "linear"))
    router.fit(train.outcomes, train.features)
    assert router.weights_.shape == (3, 3)
    # The random router's guesses explain nothing out of fold.
    assert np.all(router.weights_[:, 1] < 0.1)
    est = router.estimate(test.features).quality
    best = np.asarray(test.outcomes.model_names)[np.argmax(est, axis=1)]
    np.testing.assert_array_equal(best, test.best_model)
    assert np.mean(np.abs(est - test.outcomes.quality)) < 0.15


def test_round_trip_rebuilds_every_base_router(two_cluster, tmp_path: Path) -> None:
    x, o = two_cluster.features, two_cluster.outcomes
    router = make_router("ensemble", base=("knn", "mlp", "cluster"), stacker="logistic",
                         base_params={"mlp": {"hidden": (8,), "max_iter": 50},
                                      "cluster": {"n_clusters": 3}})
    router.fit(o, x)
    router.save(tmp_path)
    loaded = Router.load(tmp_path)
    assert [type(r).__name__ for r in loaded.base_routers()] == [
        "KNNRouter", "MLPRouter", "ClusterRouter"]
    assert loaded.base_routers()[2].n_clusters == 3
    np.testing.assert_array_equal(loaded.base_estimates(x), router.base_estimates(x))
    np.testing.assert_array_equal(loaded.estimate(x).quality, router.estimate(x).quality)


def test_task_grouped_inner_folds_keep_tasks_together(two_cluster) -> None:
    router = make_router("ensemble", inner_split="task", cv=5)
    folds = router._inner_folds(two_cluster.outcomes)
    tasks = np.asarray(two_cluster.outcomes.tasks)
    assert len(folds) == 2  # two tasks: at most two groups
    assert sorted(np.concatenate(folds).tolist()) == list(range(two_cluster.outcomes.n_prompts))
    assert all(len(set(tasks[f])) == 1 for f in folds)


@pytest.mark.parametrize("params, message", [
    ({"base": ()}, "no router"),
    ({"base": ("knn", "knn")}, "twice"),
    ({"base": ("knn", "ensemble")}, "cannot be a base"),
    ({"base": ("knn", "oracle")}, "cannot be a base"),
    ({"base": ("knn", "nope")}, "unknown router 'nope'"),
    ({"base": ("knn",), "base_params": {"mlp": {}}}, "not in base"),
    ({"base": ("knn",), "stacker": "vote"}, "unknown stacker"),
    ({"base": ("knn",), "inner_split": "day"}, "unknown inner_split"),
    ({"base": ("knn",), "cv": 1000}, "cv must be"),
])
def test_bad_parameters_are_router_errors(params, message: str, two_cluster) -> None:
    with pytest.raises(RouterError, match=message):
        make_router("ensemble", **params).fit(two_cluster.outcomes, two_cluster.features)

"""Contextual bandit: learns from partial feedback (only the chosen model's outcome) and converges
to the right model per prompt cluster; batch ``fit`` equals learning every cell one at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyroute.errors import RouterError
from polyroute.routers import CostModel, Router, make_router


def replay(router, world, steps: int, lam: float, seed: int = 0) -> np.ndarray:
    """Stream random prompts of ``world``; the bandit sees only its chosen model's quality.
    Returns the quality obtained at each step."""
    o, x = world.outcomes, world.features
    cost = CostModel.fit(o)
    predicted = cost.predict(o.prompts)
    rng = np.random.default_rng(seed)
    got = np.empty(steps)
    for t in range(steps):
        i = int(rng.integers(o.n_prompts))
        j = router.select(x[i], lam, predicted[i], cost.cost_scale)
        got[t] = o.quality[i, j]
        router.learn_one(x[i], o.model_names[j], o.quality[i, j])
    return got


@pytest.mark.parametrize("exploration", ["ucb", "thompson"])
def test_converges_to_the_right_model_under_partial_feedback(exploration, two_cluster_split):
    train, test = two_cluster_split
    router = make_router("bandit", n_components=4, exploration=exploration)
    router.start(train.outcomes.model_names, train.features)  # prompts only, no outcomes
    got = replay(router, train, 400, lam=0.0)
    assert sum(router.count_) == 400  # one arm learned per step
    assert got[-100:].mean() > 0.95  # math → A, poetry → B, once learned
    assert got[:20].mean() < got[-100:].mean()
    est = router.estimate(test.features)
    best = np.asarray(test.outcomes.model_names)[np.argmax(est.quality, axis=1)]
    np.testing.assert_array_equal(best, test.best_model)


def test_a_high_cost_weight_settles_on_the_cheap_model(two_cluster):
    router = make_router("bandit", n_components=4).start(two_cluster.outcomes.model_names,
                                                         two_cluster.features)
    replay(router, two_cluster, 300, lam=5.0)
    # C (0.4 everywhere, 20x cheaper than A) wins the trade-off; it gets most of the traffic.
    assert router.count_[2] > 200


def test_exploration_tries_every_model(two_cluster):
    router = make_router("bandit", n_components=4).start(two_cluster.outcomes.model_names,
                                                         two_cluster.features)
    replay(router, two_cluster, 60, lam=0.0)
    assert min(router.count_) >= 1


def test_batch_fit_equals_learning_every_cell_one_by_one(two_cluster):
    o, x = two_cluster.outcomes, two_cluster.features
    batch = make_router("bandit", n_components=3).fit(o, x)
    online = make_router("bandit", n_components=3).start(o.model_names, x)
    for i in range(o.n_prompts):
        for j, name in enumerate(o.model_names):
            online.learn_one(x[i], name, o.quality[i, j])
    a, b = batch.estimate(x), online.estimate(x)
    np.testing.assert_allclose(a.quality, b.quality, atol=1e-8)
    np.testing.assert_allclose(a.uncertainty, b.uncertainty, atol=1e-8)


def test_uncertainty_shrinks_with_observations(two_cluster):
    o, x = two_cluster.outcomes, two_cluster.features
    router = make_router("bandit", n_components=3).start(o.model_names, x)
    before = router.estimate(x).uncertainty
    for i in range(10):
        router.learn_one(x[i], "A", o.quality[i, 0])
    after = router.estimate(x).uncertainty
    assert np.all(after[:, 0] < before[:, 0])
    # The other models learn only through the shared weights: less sure than A, surer than before.
    assert np.all(after[:, 1:] < before[:, 1:]) and np.all(after[:, 1:] > after[:, :1])
    # Unknown outcomes carry no information.
    router.learn_one(x[0], "B", float("nan"))
    np.testing.assert_allclose(router.estimate(x).uncertainty, after)


def test_shared_weights_carry_what_one_model_teaches_to_the_others(two_cluster):
    """Prompts of a cluster that model A always fails are hard: B's estimate there drops too
    (the shared part), by less than A's; with ``arm_scale`` large the models are independent."""
    o, x = two_cluster.outcomes, two_cluster.features
    shifts = {}
    for arm_scale in (0.3, 100.0):
        router = make_router("bandit", n_components=3, arm_scale=arm_scale).start(
            o.model_names, x)
        before = router.estimate(x[two_cluster.poetry_rows]).quality
        for i in two_cluster.poetry_rows[:15]:
            router.learn_one(x[i], "A", 0.0)
        after = router.estimate(x[two_cluster.poetry_rows]).quality
        shifts[arm_scale] = (after - before).mean(axis=0)
    assert shifts[0.3][0] < shifts[0.3][1] < -0.05
    assert shifts[100.0][0] < -0.3 and abs(shifts[100.0][1]) < 0.01


def test_learning_continues_after_save_and_load(two_cluster, tmp_path: Path):
    o, x = two_cluster.outcomes, two_cluster.features
    router = make_router("bandit", n_components=3).start(o.model_names, x)
    replay(router, two_cluster, 50, lam=0.0, seed=1)
    router.save(tmp_path)
    loaded = Router.load(tmp_path)
    for r in (router, loaded):
        r.learn_one(x[3], "B", 1.0)
    np.testing.assert_allclose(loaded.estimate(x).quality, router.estimate(x).quality,
                               atol=1e-12)
    assert loaded.count_ == router.count_


def test_user_errors_are_router_errors(two_cluster):
    o, x = two_cluster.outcomes, two_cluster.features
    router = make_router("bandit", n_components=3).fit(o, x)
    with pytest.raises(RouterError, match="unknown model 'Z'"):
        router.learn_one(x[0], "Z", 1.0)
    with pytest.raises(RouterError, match=r"\[0, 1\]"):
        router.learn_one(x[0], "A", 1.5)
    with pytest.raises(RouterError, match="features_row"):
        router.learn_one(x[0, :3], "A", 1.0)
    with pytest.raises(RouterError, match="cost_row"):
        router.select(x[0], 0.0, np.ones(2))
    with pytest.raises(RouterError, match="lam"):
        router.select(x[0], -1.0, np.ones(3))
    with pytest.raises(RouterError, match="exploration"):
        make_router("bandit", exploration="greedy").fit(o, x)
    with pytest.raises(RouterError, match="distinct"):
        make_router("bandit").start(["A", "A"], x)
    with pytest.raises(RouterError, match="not fitted"):
        make_router("bandit").learn_one(x[0], "A", 1.0)


def test_rank_deficient_features_do_not_blow_up_new_prompts() -> None:
    """Whitening must skip directions with no variance (tf-idf spaces are often low-rank)."""
    from polyroute.data import ModelInfo, Outcomes
    from polyroute.routers import make_router

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(60, 5)) @ rng.normal(size=(5, 40))).astype(np.float32)  # rank 5
    q = (rng.random((60, 2)) > 0.5).astype(float)
    n = len(x)
    outcomes = Outcomes(tuple(str(i) for i in range(n)), ("p",) * n, ("t",) * n,
                        (ModelInfo("a", 1, 1), ModelInfo("b", 1, 1)), q, np.ones((n, 2)))
    router = make_router("bandit", n_components=32).fit(outcomes, x)
    assert router.projection_.shape[1] == 5
    unseen = rng.normal(size=(4, 40)).astype(np.float32)
    est = router.estimate(unseen)
    # Unclipped posterior means stay in a sane range instead of ±1e4.
    assert np.all(np.isfinite(est.quality))
    assert np.abs(router._context(unseen)).max() < 1e3

"""Learned routers find the structure planted in the two-cluster world; baselines behave.

Math prompts are solved only by A, poetry prompts only by B: at λ = 0 a router that learned
anything sends math to A and poetry to B, scoring ~1.0 on held-out prompts where the best single
model (A) scores 0.55.
"""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.errors import RouterError
from polyroute.policies import TradeoffPolicy, decisions
from polyroute.routers import CostModel, Estimates, make_router

LEARNED = ["knn", "linear", "mlp", "mf", "cluster"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def with_cost(est: Estimates, train, test) -> Estimates:
    cost_model = CostModel.fit(train)
    return est.with_cost(cost_model.predict(test.prompts), cost_model.cost_scale)


def held_out_quality(choice: list[str], test) -> float:
    cols = [test.model_names.index(m) for m in choice]
    return float(np.mean(test.quality[np.arange(test.n_prompts), cols]))


@pytest.mark.parametrize("name", LEARNED)
def test_learned_router_finds_the_planted_answer(name: str, two_cluster_split) -> None:
    train, test = two_cluster_split
    router = make_router(name).fit(train.outcomes, train.features)
    est = with_cost(router.estimate(test.features), train.outcomes, test.outcomes)
    chosen = [d.model for d in decisions(est, TradeoffPolicy(0.0))]
    assert [chosen[i] for i in test.math_rows] == ["A"] * len(test.math_rows)
    assert [chosen[i] for i in test.poetry_rows] == ["B"] * len(test.poetry_rows)

    single = make_router("best-single").fit(train.outcomes, train.features)
    single_est = with_cost(single.estimate(test.features), train.outcomes, test.outcomes)
    single_choice = [d.model for d in decisions(single_est, TradeoffPolicy(0.0))]
    assert set(single_choice) == {"A"}
    assert held_out_quality(chosen, test.outcomes) == pytest.approx(1.0)
    assert held_out_quality(chosen, test.outcomes) > held_out_quality(single_choice,
                                                                      test.outcomes) + 0.4


@pytest.mark.parametrize("name", LEARNED)
def test_learned_estimates_track_the_truth(name: str, two_cluster_split) -> None:
    train, test = two_cluster_split
    est = make_router(name).fit(train.outcomes, train.features).estimate(test.features)
    error = np.abs(est.quality - test.outcomes.quality)
    # The cheap model C is mediocre everywhere; the others are right or wrong by cluster.
    assert error.mean() < 0.25
    assert np.all(est.quality[test.math_rows, 0] > est.quality[test.math_rows, 1])
    assert np.all(est.quality[test.poetry_rows, 1] > est.quality[test.poetry_rows, 0])


# -- baselines -----------------------------------------------------------------------------------
def test_cheapest_picks_the_cheapest_model(two_cluster_split) -> None:
    train, test = two_cluster_split
    router = make_router("cheapest").fit(train.outcomes, train.features)
    est = with_cost(router.estimate(test.features), train.outcomes, test.outcomes)
    assert {d.model for d in decisions(est, TradeoffPolicy(0.0))} == {"C"}
    # Its fallback order is by price: C, then B, then A.
    assert decisions(est, TradeoffPolicy(0.0))[0].candidates == ("C", "B", "A")


def test_best_single_is_constant(two_cluster_split) -> None:
    train, test = two_cluster_split
    router = make_router("best-single").fit(train.outcomes, train.features)
    est = router.estimate(test.features)
    np.testing.assert_allclose(est.quality, np.tile([0.55, 0.5, 0.4], (test.outcomes.n_prompts,
                                                                       1)))


def test_best_single_uses_known_cells_only(two_cluster_factory) -> None:
    world = two_cluster_factory(20, missing=0.4)
    est = make_router("best-single").fit(world.outcomes, world.features).estimate(
        world.features[:1])
    np.testing.assert_allclose(est.quality[0], np.nanmean(world.outcomes.quality, axis=0))


def test_oracle_returns_the_truth_and_refuses_other_rows(two_cluster_factory) -> None:
    world = two_cluster_factory(10, missing=0.2)
    oracle = make_router("oracle").fit(world.outcomes, world.features)
    est = oracle.estimate(world.features)
    np.testing.assert_array_equal(est.quality, np.nan_to_num(world.outcomes.quality))
    with pytest.raises(RouterError, match="oracle"):
        oracle.estimate(world.features[:-1])
    assert oracle.evaluation_only


def test_random_guesses_are_seeded_and_vary(two_cluster) -> None:
    x, o = two_cluster.features, two_cluster.outcomes
    a = make_router("random", random_state=1).fit(o, x).estimate(x).quality
    b = make_router("random", random_state=1).fit(o, x).estimate(x).quality
    c = make_router("random", random_state=2).fit(o, x).estimate(x).quality
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len({int(i) for i in np.argmax(a, axis=1)}) == 3  # every model gets picked sometimes

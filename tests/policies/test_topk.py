"""Top-k aggregate: dynamic set size, honest offline scoring, dependence fitting."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.errors import PolicyError
from polyroute.policies import SetDecision, TopKPolicy, TradeoffPolicy, fit_dependence
from polyroute.routers.base import Estimates

MODELS = ("a", "b", "c", "d")


def estimates(quality: list[list[float]], cost: float | list[float] = 1.0) -> Estimates:
    q = np.array(quality, dtype=float)
    c = np.broadcast_to(np.asarray(cost, dtype=float), q.shape).copy()
    return Estimates(MODELS, q, c, None, cost_scale=1.0)


CONFIDENT_AND_UNSURE = estimates([[0.99, 0.5, 0.5, 0.5],   # one model is sure: k = 1
                                  [0.5, 0.5, 0.5, 0.5]])   # nobody is: several


def test_k_is_one_when_a_model_is_confident_and_grows_when_unsure() -> None:
    chosen = TopKPolicy(0.05, max_k=3).select(CONFIDENT_AND_UNSURE)
    assert chosen.sum(axis=1).tolist() == [1, 3]
    assert chosen[0, 0]


def test_a_high_lambda_reduces_to_the_tradeoff_choice() -> None:
    est = estimates([[0.9, 0.5, 0.7, 0.2], [0.1, 0.6, 0.5, 0.55]], cost=[4.0, 1.0, 2.0, 1.0])
    chosen = TopKPolicy(5.0).select(est)
    assert chosen.sum(axis=1).tolist() == [1, 1]
    np.testing.assert_array_equal(np.argmax(chosen, axis=1), TradeoffPolicy(5.0).choose(est))


def test_fully_dependent_members_add_nothing() -> None:
    chosen = TopKPolicy(0.0, dependence=1.0).select(CONFIDENT_AND_UNSURE)
    assert chosen.sum(axis=1).tolist() == [1, 1]


def test_max_k_caps_the_set() -> None:
    assert TopKPolicy(0.0, max_k=2).select(CONFIDENT_AND_UNSURE).sum(axis=1).max() == 2
    assert TopKPolicy(0.0, max_k=4).select(CONFIDENT_AND_UNSURE)[1].sum() == 4


def test_the_aggregator_cost_can_make_sets_not_worth_it() -> None:
    # adding a second 0.5 model gains 0.25; at λ = 0.1 it costs 0.1 + 0.1 × aggregator
    assert TopKPolicy(0.1, max_k=2).select(CONFIDENT_AND_UNSURE)[1].sum() == 2
    assert TopKPolicy(0.1, max_k=2, aggregator_cost=2.0).select(CONFIDENT_AND_UNSURE)[1].sum() == 1


def test_offline_score_is_the_best_member_and_every_member_is_charged() -> None:
    truth = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    cost = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    policy = TopKPolicy(0.05, max_k=3, aggregator_cost=0.5)
    chosen = policy.select(CONFIDENT_AND_UNSURE)
    q, c = policy.simulate(CONFIDENT_AND_UNSURE, truth, cost)
    assert c[0] == pytest.approx(1.0)  # single member: no aggregator
    assert c[1] == pytest.approx(cost[1][chosen[1]].sum() + 0.5)
    assert q[1] == truth[1][chosen[1]].max()
    q_mean, _ = TopKPolicy(0.05, max_k=3, offline_quality="mean").simulate(
        CONFIDENT_AND_UNSURE, truth, cost)
    assert q_mean[1] == pytest.approx(truth[1][chosen[1]].mean())


def test_an_aggregator_model_is_charged_its_predicted_cost() -> None:
    est = estimates([[0.5] * 4], cost=[1.0, 1.0, 1.0, 7.0])
    policy = TopKPolicy(0.01, max_k=2, aggregator="d")
    _, c = policy.simulate(est, np.zeros((1, 4)), np.ones((1, 4)))
    assert c[0] == pytest.approx(2.0 + 7.0)
    with pytest.raises(PolicyError):
        TopKPolicy(0.0, aggregator="zzz").select(est)


def test_decisions_list_members_best_first_and_fallbacks() -> None:
    est = estimates([[0.4, 0.45, 0.5, 0.3], [0.99, 0.5, 0.5, 0.5]])
    d = TopKPolicy(0.05, max_k=3).decide(est)
    assert isinstance(d[0], SetDecision)
    assert d[0].members == ("c", "b", "a") and d[0].aggregate and d[0].fallbacks == ("d",)
    assert d[0].estimated_quality == pytest.approx(1 - 0.6 * 0.55 * 0.5)
    assert d[0].estimated_cost == pytest.approx(3.0)
    assert d[1].members == ("a",) and not d[1].aggregate and d[1].model == "a"
    assert sorted(d[1].candidates) == sorted(MODELS)


def test_fit_dependence_tells_shared_failures_from_independent_ones() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    p = rng.uniform(0.2, 0.8, size=(n, 1)) * np.ones((1, 4))
    est = Estimates(MODELS, p, np.ones_like(p), None, 1.0)
    independent = (rng.random((n, 4)) < p).astype(float)
    shared = np.repeat((rng.random((n, 1)) < p[:, :1]).astype(float), 4, axis=1)
    assert fit_dependence(est, independent) < 0.1
    assert fit_dependence(est, shared) > 0.9


@pytest.mark.parametrize("kwargs", [{"lam": -1.0}, {"max_k": 0}, {"dependence": 1.5},
                                    {"aggregator_cost": -1.0}, {"offline_quality": "max"}])
def test_bad_parameters_raise_policy_error(kwargs) -> None:
    with pytest.raises(PolicyError):
        TopKPolicy(**kwargs)

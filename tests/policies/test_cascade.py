"""Cascade policy: chains, escalation, honest costs, decisions and the answer-scorer interface."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.errors import PolicyError
from polyroute.evaluation.sweep import operating_points, simulate
from polyroute.policies import (
    AnswerScorer,
    CascadeDecision,
    CascadePolicy,
    HeuristicScorer,
    decisions,
)
from polyroute.routers.base import Estimates

MODELS = ("cheap", "mid", "strong", "dud")
COST = np.array([1.0, 2.0, 10.0, 12.0])  # "dud" is dearer and worse than "strong": never chained


def estimates(quality: list[list[float]], uncertainty: np.ndarray | None = None) -> Estimates:
    q = np.array(quality, dtype=float)
    return Estimates(MODELS, q, np.tile(COST, (len(q), 1)), uncertainty, cost_scale=10.0)


EST = estimates([[0.3, 0.6, 0.9, 0.2],
                 [0.95, 0.6, 0.97, 0.2],
                 [0.1, 0.1, 0.3, 0.2]])


def names(chain_row: np.ndarray) -> list[str]:
    return [MODELS[j] for j in chain_row if j >= 0]


def test_chain_is_the_estimated_frontier_cheapest_first() -> None:
    chains = CascadePolicy(0.0, max_calls=4, skip_hopeless=False).chains(EST)
    assert names(chains[0]) == ["cheap", "mid", "strong"]
    assert names(chains[1]) == ["cheap", "strong"]  # mid is dominated by cheap on this prompt
    assert "dud" not in {m for row in chains for m in names(row)}


def test_max_calls_keeps_the_first_steps_and_the_last() -> None:
    chains = CascadePolicy(0.0, max_calls=2, skip_hopeless=False).chains(EST)
    assert names(chains[0]) == ["cheap", "strong"]
    assert names(CascadePolicy(0.0, max_calls=1, skip_hopeless=False).chains(EST)[0]) == ["strong"]


def test_lambda_bounds_the_escalation_target() -> None:
    # λ = 10 makes the strong model's extra cost (0.8 cost_scale) worth more than its gain
    chains = CascadePolicy(0.0, lam=10.0, max_calls=4, skip_hopeless=False).chains(EST)
    assert names(chains[0]) == ["cheap"]


def test_hopeless_steps_are_skipped_before_the_call() -> None:
    chains = CascadePolicy(0.5, max_calls=4).chains(EST)
    assert names(chains[0]) == ["mid", "strong"]  # cheap's prior 0.3 can never pass 0.5
    assert names(chains[2]) == ["strong"]  # nothing passes: the target alone


def test_naive_cascade_charges_every_model_it_calls() -> None:
    truth = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    cost = np.tile(COST, (3, 1))
    q, c = CascadePolicy(0.8, skip_hopeless=False).simulate(EST, truth, cost)
    # prompt 0: cheap (0.3 < 0.8) escalates to strong; prompt 1: cheap (0.95) is accepted
    np.testing.assert_allclose(c, [11.0, 1.0, 11.0])
    np.testing.assert_allclose(q, [1.0, 1.0, 1.0])
    # the evaluation sweep uses the policy's own simulate
    q2, c2 = simulate(CascadePolicy(0.8, skip_hopeless=False), EST, truth, cost)
    np.testing.assert_allclose(c2, c)


def test_without_answers_a_pruned_cascade_pays_for_one_call() -> None:
    truth = np.ones((3, 4))
    cost = np.tile(COST, (3, 1))
    for t in (0.0, 0.5, 0.8, 1.0):
        policy = CascadePolicy(t, max_calls=3)
        _, paid = policy.simulate(EST, truth, cost)
        np.testing.assert_allclose(paid, COST[policy.choose(EST)])


def test_a_bad_answer_score_escalates_and_both_calls_are_paid() -> None:
    truth = np.array([[1.0, 0.0, 1.0, 0.0]] * 3)
    cost = np.tile(COST, (3, 1))
    scores = np.ones((3, 4))
    scores[1, 0] = 0.0  # the scorer rejects cheap's answer on prompt 1 despite its 0.95 prior
    q, c = CascadePolicy(0.9).simulate(EST, truth, cost, answer_scores=scores)
    assert c[1] == pytest.approx(11.0)
    assert q[1] == 1.0
    _, c_ok = CascadePolicy(0.9).simulate(EST, truth, cost)
    assert c_ok[1] == pytest.approx(1.0)


def test_the_most_confident_called_answer_is_returned() -> None:
    # fixed chain strong → cheap: strong (0.9) fails the 0.95 threshold, cheap (0.3) is worse still
    truth = np.array([[0.0, 0.0, 1.0, 0.0]])
    est = estimates([[0.3, 0.6, 0.9, 0.2]])
    policy = CascadePolicy(0.95, chain=("strong", "cheap"), skip_hopeless=False)
    q, c = policy.simulate(est, truth, np.tile(COST, (1, 1)))
    assert c[0] == pytest.approx(11.0) and q[0] == 1.0


def test_operating_points_grow_with_the_threshold() -> None:
    truth = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    points = operating_points(EST, truth, np.tile(COST, (3, 1)),
                              make_policy=lambda t: CascadePolicy(t, skip_hopeless=False),
                              knobs=np.linspace(0, 1, 11))
    assert np.all(np.diff(points[:, 0]) >= 0)


def test_uncertainty_lowers_the_prior() -> None:
    unc = np.zeros((3, 4))
    unc[1, 0] = 0.5
    est = estimates(EST.quality.tolist(), unc)
    assert names(CascadePolicy(0.9).chains(est)[1]) == ["cheap", "strong"]
    assert names(CascadePolicy(0.9, kappa=1.0).chains(est)[1]) == ["strong"]


def test_decisions_expose_chain_thresholds_and_fallbacks() -> None:
    policy = CascadePolicy(0.5, max_calls=3)
    decisions = policy.decide(EST)
    d = decisions[0]
    assert isinstance(d, CascadeDecision)
    assert d.chain == ("mid", "strong") and d.thresholds == (0.5,)
    assert d.prior == pytest.approx((0.6, 0.9)) and d.estimated_cost == (2.0, 10.0)
    assert sorted(d.candidates) == sorted(MODELS) and d.model == "mid"
    assert d.accept(0) and not d.accept(0, answer_score=0.5)  # 0.6 × 0.5 < 0.5
    assert d.accept(1, answer_score=0.0)  # the last step is always accepted
    assert d.final([0.3, 0.3]) == 1 and d.final([0.6, 0.1]) == 0
    ranked = policy.rank(EST)
    assert [MODELS[j] for j in ranked[0][:2]] == ["mid", "strong"]
    assert all(sorted(r) == list(range(4)) for r in ranked)


def test_heuristic_scorer_flags_visible_failures_only() -> None:
    s = HeuristicScorer()
    assert isinstance(s, AnswerScorer)
    assert s.score("q", "") == 0.0 and s.score("q", "   \n") == 0.0
    assert s.score("q", "I'm sorry, but I can't help with that.") <= 0.1
    assert s.score("q", "As an AI language model, I cannot browse.") <= 0.1
    assert s.score("Write code", "```python\ndef f():\n    return") == 0.5
    assert s.score("q", "\n".join(["the answer is"] * 10)) == 0.3
    assert s.score("2+2?", "4") == 1.0
    assert s.score("q", "Paris is the capital of France. I'm sorry to add nothing else.") == 1.0
    assert HeuristicScorer(min_chars=5).score("q", "ok") == 0.3


@pytest.mark.parametrize("make", [
    lambda: CascadePolicy(1.5),
    lambda: CascadePolicy(0.5, lam=-1.0),
    lambda: CascadePolicy(0.5, max_calls=0),
    lambda: CascadePolicy(0.5, chain=()),
    lambda: CascadePolicy(0.5, chain=("cheap", "cheap")),
    lambda: CascadePolicy(0.5, chain=("cheap", "nope")).chains(EST),
    lambda: CascadePolicy(0.5, kappa=1.0).chains(EST),
    lambda: CascadePolicy(0.5).decide(EST)[0].accept(0, answer_score=1.5),
    lambda: HeuristicScorer(refusal_score=2.0),
])
def test_user_errors_raise_policy_error(make) -> None:
    with pytest.raises(PolicyError):
        make()


def test_plain_decisions_put_the_chain_first() -> None:
    # what a gateway that knows only ranked candidates gets: the chain, then the fallbacks
    d = decisions(EST, CascadePolicy(0.5, max_calls=3))[0]
    assert d.candidates[:2] == ("mid", "strong") and d.policy == "cascade"

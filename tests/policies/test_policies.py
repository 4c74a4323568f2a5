"""Single-choice policies: trade-off, quality floor, batch budget, λ calibration, decisions.

(Cascade, top-k and capacity policies have their own test files.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from polyroute.errors import PolicyError
from polyroute.policies import (
    BudgetPolicy,
    Decision,
    FloorPolicy,
    Preference,
    TradeoffPolicy,
    calibrate_lambda,
    decisions,
    lambda_for_budget,
    policy_for,
    tradeoff_scores,
)
from polyroute.routers import Estimates

MODELS = ("A", "B", "C")
COST = (1.0, 0.5, 0.1)  # A is dearest, C cheapest


def estimates(quality, cost=COST, cost_scale: float = 1.0) -> Estimates:
    q = np.atleast_2d(np.asarray(quality, dtype=float))
    c = np.broadcast_to(np.asarray(cost, dtype=float), q.shape).copy()
    return Estimates(MODELS, q, c, cost_scale=cost_scale)


ONE = estimates([0.9, 0.6, 0.3])


def names(policy, est: Estimates) -> list[str]:
    return [MODELS[j] for j in policy.choose(est)]


# -- trade-off -----------------------------------------------------------------------------------
def test_lambda_zero_takes_the_best_quality_whatever_it_costs() -> None:
    est = estimates([[0.9, 0.6, 0.3], [0.2, 0.7, 0.3], [0.1, 0.2, 0.35]])
    assert names(TradeoffPolicy(0.0), est) == ["A", "B", "C"]
    np.testing.assert_array_equal(TradeoffPolicy(0).rank(est)[0], [0, 1, 2])


def test_large_lambda_takes_the_cheapest() -> None:
    est = estimates([[0.9, 0.6, 0.3], [0.2, 0.7, 0.3]])
    assert names(TradeoffPolicy(1e6), est) == ["C", "C"]
    np.testing.assert_array_equal(TradeoffPolicy(1e6).rank(est)[0], [2, 1, 0])


@pytest.mark.parametrize(("lam", "expected"), [(0.5, "A"), (0.7, "B"), (1.0, "C")])
def test_intermediate_lambdas_by_hand(lam: float, expected: str) -> None:
    # Scores q − λc: λ=0.5 → .40 .35 .25; λ=0.7 → .20 .25 .23; λ=1 → −.1 .1 .2
    assert names(TradeoffPolicy(lam), ONE) == [expected]
    np.testing.assert_allclose(tradeoff_scores(ONE, lam)[0], np.array([0.9, 0.6, 0.3])
                               - lam * np.array(COST))


def test_lambda_is_relative_to_the_cost_scale() -> None:
    scaled = estimates([0.9, 0.6, 0.3], cost=np.array(COST) * 1e-4, cost_scale=1e-4)
    for lam in (0.5, 0.7, 1.0):
        assert names(TradeoffPolicy(lam), scaled) == names(TradeoffPolicy(lam), ONE)


# -- floor ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("floor", "expected", "order"), [
    (0.5, "B", ["B", "A", "C"]),  # cheapest reaching 0.5 is B; then A reaches it; C does not
    (0.3, "C", ["C", "B", "A"]),  # everyone reaches it: cheapest first
    (0.0, "C", ["C", "B", "A"]),
    (0.9, "A", ["A", "B", "C"]),  # exactly at the floor counts
    (0.95, "A", ["A", "B", "C"]),  # nobody reaches it: best quality first
])
def test_floor_takes_the_cheapest_model_above_it(floor: float, expected: str,
                                                 order: list[str]) -> None:
    policy = FloorPolicy(floor)
    assert names(policy, ONE) == [expected]
    assert [MODELS[j] for j in policy.rank(ONE)[0]] == order


def test_floor_decides_per_prompt() -> None:
    est = estimates([[0.9, 0.6, 0.3], [0.9, 0.4, 0.8], [0.1, 0.2, 0.3]])
    assert names(FloorPolicy(0.5), est) == ["B", "C", "C"]


# -- budget --------------------------------------------------------------------------------------
@pytest.fixture
def batch() -> Estimates:
    rng = np.random.default_rng(0)
    quality = np.sort(rng.random((50, 3)), axis=1)[:, ::-1]  # dearer models are better
    quality[::7] = quality[::7, ::-1]  # ... except on a few prompts
    return estimates(quality)


@pytest.mark.parametrize("budget", [0.1, 0.2, 0.35, 0.5, 0.8, 0.99])
def test_budget_keeps_the_mean_cost_within_budget(batch: Estimates, budget: float) -> None:
    choice = BudgetPolicy(budget).choose(batch)
    mean_cost = batch.cost[np.arange(len(choice)), choice].mean()
    assert mean_cost <= budget + 1e-12
    # And it spends: the quality beats sending everything to the cheapest model.
    quality = batch.quality[np.arange(len(choice)), choice].mean()
    assert quality >= batch.quality[:, 2].mean()


def test_more_budget_buys_more_quality(batch: Estimates) -> None:
    got = []
    for budget in (0.1, 0.3, 0.5, 0.7, 1.0):
        choice = BudgetPolicy(budget).choose(batch)
        got.append(batch.quality[np.arange(len(choice)), choice].mean())
    assert got == sorted(got)


def test_ample_budget_is_lambda_zero(batch: Estimates) -> None:
    assert lambda_for_budget(batch, 5.0) == 0.0
    np.testing.assert_array_equal(BudgetPolicy(5.0).choose(batch),
                                  TradeoffPolicy(0).choose(batch))


def test_infeasible_budget_falls_back_to_the_cheapest(batch: Estimates) -> None:
    assert math.isinf(lambda_for_budget(batch, 0.05))
    assert set(names(BudgetPolicy(0.05), batch)) == {"C"}
    assert set(names(BudgetPolicy(0.0), batch)) == {"C"}
    np.testing.assert_array_equal(BudgetPolicy(0.0).rank(batch)[0], [2, 1, 0])


# -- calibration ---------------------------------------------------------------------------------
@pytest.fixture
def two_model_batch() -> Estimates:
    # The expensive model E is 0.9 everywhere; the cheap one ranges evenly over [0, 0.9).
    n = 200
    cheap = np.linspace(0.0, 0.9, n, endpoint=False)
    return Estimates(("E", "cheap"), np.stack([np.full(n, 0.9), cheap], axis=1),
                     np.tile([1.0, 0.1], (n, 1)), cost_scale=1.0)


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5, 0.8])
def test_calibrated_lambda_sends_the_requested_share(two_model_batch: Estimates,
                                                      share: float) -> None:
    lam = calibrate_lambda(two_model_batch, share)
    sent = float(np.mean(TradeoffPolicy(lam).choose(two_model_batch) == 0))
    assert sent == pytest.approx(share, abs=0.01)
    assert calibrate_lambda(two_model_batch, share, expensive=["E"]) == pytest.approx(lam)


def test_calibration_edge_shares(two_model_batch: Estimates) -> None:
    assert calibrate_lambda(two_model_batch, 1.0) == 0.0
    lam = calibrate_lambda(two_model_batch, 0.0)
    assert np.all(TradeoffPolicy(lam).choose(two_model_batch) == 1)


# -- decisions and preferences -------------------------------------------------------------------
def test_decisions_are_ranked_with_estimates() -> None:
    est = estimates([[0.9, 0.6, 0.3], [0.2, 0.7, 0.3]])
    ds = decisions(est, TradeoffPolicy(0.0))
    assert len(ds) == 2 and all(isinstance(d, Decision) for d in ds)
    assert ds[0].candidates == ("A", "B", "C") and ds[0].model == "A"
    assert ds[1].candidates == ("B", "C", "A") and ds[1].model == "B"
    assert ds[1].estimated_quality == pytest.approx({"A": 0.2, "B": 0.7, "C": 0.3})
    assert ds[1].estimated_cost == pytest.approx(dict(zip(MODELS, COST, strict=True)))
    assert ds[0].policy == "tradeoff"
    assert decisions(est, FloorPolicy(0.5))[0].policy == "floor"


@pytest.mark.parametrize("policy", [TradeoffPolicy(0.3), FloorPolicy(0.5), BudgetPolicy(0.4)])
def test_choose_is_the_first_ranked_candidate(policy, batch: Estimates) -> None:
    np.testing.assert_array_equal(policy.choose(batch), policy.rank(batch)[:, 0])
    ranks = policy.rank(batch)
    assert np.all(np.sort(ranks, axis=1) == np.arange(3))


def test_preference_precedence() -> None:
    assert isinstance(policy_for(Preference(lam=2.0)), TradeoffPolicy)
    assert policy_for(Preference(lam=2.0)).lam == 2.0
    assert isinstance(policy_for(Preference(lam=2.0, budget=0.1)), BudgetPolicy)
    assert isinstance(policy_for(Preference(lam=2.0, budget=0.1, floor=0.5)), FloorPolicy)
    assert isinstance(policy_for(Preference()), TradeoffPolicy)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: TradeoffPolicy(-0.1),
    lambda: TradeoffPolicy(float("nan")),
    lambda: TradeoffPolicy(float("inf")),
    lambda: TradeoffPolicy("1"),
    lambda: FloorPolicy(-0.01),
    lambda: FloorPolicy(1.01),
    lambda: FloorPolicy(float("nan")),
    lambda: FloorPolicy("high"),
    lambda: BudgetPolicy(-1.0),
    lambda: BudgetPolicy(float("nan")),
    lambda: BudgetPolicy(float("inf")),
    lambda: BudgetPolicy(None),
    lambda: policy_for(Preference(floor=2.0)),
])
def test_bad_preferences_raise_policy_error(make) -> None:
    with pytest.raises(PolicyError):
        make()


def test_bad_calibration_requests(two_model_batch: Estimates) -> None:
    with pytest.raises(PolicyError, match="share"):
        calibrate_lambda(two_model_batch, 1.5)
    with pytest.raises(PolicyError, match="share"):
        calibrate_lambda(two_model_batch, -0.1)
    with pytest.raises(PolicyError, match="unknown model.*nope"):
        calibrate_lambda(two_model_batch, 0.5, expensive=["E", "nope"])


@pytest.mark.parametrize("policy", [TradeoffPolicy(0.5), FloorPolicy(0.5), BudgetPolicy(0.5)])
def test_estimates_without_cost_raise_policy_error(policy) -> None:
    bare = Estimates(MODELS, np.array([[0.9, 0.6, 0.3]]))
    with pytest.raises(PolicyError, match="cost"):
        policy.choose(bare)
    with pytest.raises(PolicyError, match="cost"):
        decisions(bare, policy)
    with pytest.raises(PolicyError, match="cost"):
        calibrate_lambda(bare, 0.5)

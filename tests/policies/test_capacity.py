"""Capacity-constrained routing: Sinkhorn batch assignment and bias-balanced online routing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from polyroute.errors import PolicyError
from polyroute.policies import (
    BalancedPolicy,
    BiasBalancer,
    CapacityPolicy,
    TradeoffPolicy,
    assign_with_capacity,
    sinkhorn,
)
from polyroute.policies.capacity import UNASSIGNED, slots_from_shares
from polyroute.routers.base import Estimates

MODELS = ("a", "b", "c")


def estimates(quality: np.ndarray) -> Estimates:
    return Estimates(MODELS, quality, np.ones_like(quality), None, cost_scale=1.0)


def exact_optimum(utility: np.ndarray, slots: np.ndarray) -> float:
    cols = np.repeat(np.arange(utility.shape[1]), slots)
    r, c = linear_sum_assignment(-utility[:, cols])
    return float(utility[r, cols[c]].sum())


def test_sinkhorn_meets_both_marginals() -> None:
    rng = np.random.default_rng(0)
    u = rng.random((50, 4))
    rows, cols = np.full(50, 1 / 50), np.array([0.1, 0.2, 0.3, 0.4])
    plan = sinkhorn(u, rows, cols, epsilon=0.05)
    np.testing.assert_allclose(plan.sum(axis=1), rows, atol=1e-6)
    np.testing.assert_allclose(plan.sum(axis=0), cols, atol=1e-6)
    with pytest.raises(PolicyError):
        sinkhorn(u, rows, cols, epsilon=0.0)


def test_sinkhorn_converges_on_a_degenerate_problem_at_low_temperature() -> None:
    # a spare-capacity row and a column nobody wants: plain Sinkhorn crawls here at ε = 0.01
    u = np.array([[0.0, -0.1, -0.9], [0.0, -0.8, -0.9], [0.0, -0.05, -0.9], [0.0, -0.7, -0.9],
                  [0.0, 0.0, 0.0]])
    rows, cols = np.array([1.0, 1.0, 1.0, 1.0, 6.0]), np.array([2.0, 4.0, 4.0])
    plan = sinkhorn(u, rows, cols, epsilon=0.01, max_iter=1000)
    np.testing.assert_allclose(plan.sum(axis=1), rows, atol=1e-4)
    np.testing.assert_allclose(plan.sum(axis=0), cols, atol=1e-4)
    np.testing.assert_array_equal(plan[:4].argmax(axis=1), [1, 0, 1, 0])


def test_the_prompts_that_gain_most_keep_the_scarce_model() -> None:
    # everyone prefers a; a holds two prompts; prompts 1 and 3 lose most by moving to b
    u = np.array([[0.9, 0.8, 0.0], [0.9, 0.1, 0.0], [0.9, 0.85, 0.0], [0.9, 0.2, 0.0]])
    pick = assign_with_capacity(u, np.array([2, 4, 4]))
    assert pick.tolist() == [1, 0, 1, 0]


def test_assignment_respects_slots_and_is_near_optimal() -> None:
    rng = np.random.default_rng(1)
    u = rng.random((120, 3))
    u[:, 0] += 0.3  # a popular model
    slots = np.array([30, 50, 60])
    pick = assign_with_capacity(u, slots, epsilon=0.005)
    assert (pick >= 0).all()
    assert (np.bincount(pick, minlength=3) <= slots).all()
    got = float(u[np.arange(120), pick].sum())
    assert got >= 0.995 * exact_optimum(u, slots)
    assert got < u.max(axis=1).sum()  # the constraint binds: greedy would overfill a


def test_overflow_waits_or_raises() -> None:
    u = np.random.default_rng(2).random((10, 3))
    pick = assign_with_capacity(u, np.array([2, 2, 2]), allow_unassigned=True)
    assert (pick == UNASSIGNED).sum() == 4
    assert (np.bincount(pick[pick >= 0], minlength=3) <= 2).all()
    with pytest.raises(PolicyError, match="hold only 6"):
        assign_with_capacity(u, np.array([2, 2, 2]))


def test_slots_from_shares_hold_the_batch_and_stay_within_one_prompt() -> None:
    slots = slots_from_shares(np.array([0.5, 0.5, 0.0]), 3)
    assert slots.sum() >= 3 and slots[2] == 0 and slots.max() <= 2
    np.testing.assert_array_equal(slots_from_shares(np.array([0.3, 0.3, 0.4]), 10), [3, 3, 4])


def test_capacity_policy_caps_the_popular_model() -> None:
    rng = np.random.default_rng(3)
    q = rng.uniform(0.3, 0.6, size=(100, 3))
    q[:, 0] += 0.3
    est = estimates(q)
    assert (TradeoffPolicy(0.0).choose(est) == 0).all()
    policy = CapacityPolicy({"a": 0.4})
    pick = policy.choose(est)
    assert (pick == 0).sum() <= 40
    ranked = policy.rank(est)
    np.testing.assert_array_equal(ranked[:, 0], pick)
    # no binding capacity: the trade-off choice
    np.testing.assert_array_equal(CapacityPolicy({}).choose(est), TradeoffPolicy(0.0).choose(est))


@pytest.mark.parametrize("make", [
    lambda: CapacityPolicy({"a": 1.5}),
    lambda: CapacityPolicy({"a": 0.5}, lam=-1.0),
    lambda: CapacityPolicy({"a": 0.5}, epsilon=0.0),
    lambda: CapacityPolicy({"zzz": 0.5}).choose(estimates(np.ones((2, 3)))),
    lambda: CapacityPolicy({"a": 0.1, "b": 0.1, "c": 0.1}).choose(estimates(np.ones((10, 3)))),
    lambda: BiasBalancer(MODELS, gamma=0.0),
    lambda: BiasBalancer(MODELS).update(np.ones(2), np.ones(2)),
    lambda: BalancedPolicy(BiasBalancer(("x", "y", "z"))).choose(estimates(np.ones((2, 3)))),
])
def test_user_errors_raise_policy_error(make) -> None:
    with pytest.raises(PolicyError):
        make()


def test_bias_update_lowers_overloaded_models_and_never_rewards_spare_room() -> None:
    b = BiasBalancer(MODELS, gamma=0.1)
    b.update(np.array([5.0, 1.0, 0.0]), np.array([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(b.bias_, [-0.1, 0.0, 0.0])
    b.update(np.array([0.0, 1.0, 0.0]), np.array([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(b.bias_, [0.0, 0.0, 0.0])


def test_online_balancing_brings_the_popular_model_to_its_capacity() -> None:
    rng = np.random.default_rng(4)
    q = rng.uniform(0.3, 0.6, size=(200, 3))
    q[:, 0] = q[:, 1:].max(axis=1) + rng.uniform(0.01, 0.3, size=200)  # everyone's favourite
    est = estimates(q)
    capacity = np.array([0.3, 1.0, 1.0])  # share of traffic each model can take
    balancer = BiasBalancer(MODELS, gamma=0.01)
    policy = BalancedPolicy(balancer)
    shares = []
    for _ in range(150):
        share = np.bincount(policy.choose(est), minlength=3) / len(q)
        shares.append(share[0])
        balancer.update(share, capacity)
    assert shares[0] > 0.9  # greedy at first
    assert np.mean(shares[-50:]) <= 0.35
    assert np.mean(shares[-50:]) >= 0.2  # balanced, not starved

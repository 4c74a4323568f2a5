"""Policies turn a router's estimates and the caller's preference into decisions."""

from __future__ import annotations

from dataclasses import dataclass

from polyroute.errors import PolicyError
from polyroute.policies.base import Decision, Policy, decisions, order_by, tradeoff_scores
from polyroute.policies.budget import BudgetPolicy, lambda_for_budget
from polyroute.policies.calibration import calibrate_lambda
from polyroute.policies.capacity import (
    BalancedPolicy,
    BiasBalancer,
    CapacityPolicy,
    assign_with_capacity,
    sinkhorn,
)
from polyroute.policies.cascade import (
    AnswerScorer,
    CascadeDecision,
    CascadePolicy,
    HeuristicScorer,
)
from polyroute.policies.floor import FloorPolicy
from polyroute.policies.topk import SetDecision, TopKPolicy, fit_dependence
from polyroute.policies.tradeoff import TradeoffPolicy


@dataclass(frozen=True)
class Preference:
    """What a caller asks for. A quality floor wins over a budget, which wins over λ."""

    lam: float = 0.0
    budget: float | None = None
    floor: float | None = None


def policy_for(preference: Preference) -> Policy:
    """The policy that honours ``preference``."""
    if preference.floor is not None:
        return FloorPolicy(preference.floor)
    if preference.budget is not None:
        return BudgetPolicy(preference.budget)
    return TradeoffPolicy(preference.lam)


__all__ = [
    "AnswerScorer",
    "BalancedPolicy",
    "BiasBalancer",
    "BudgetPolicy",
    "CapacityPolicy",
    "CascadeDecision",
    "CascadePolicy",
    "Decision",
    "FloorPolicy",
    "HeuristicScorer",
    "Policy",
    "PolicyError",
    "Preference",
    "SetDecision",
    "TopKPolicy",
    "TradeoffPolicy",
    "assign_with_capacity",
    "calibrate_lambda",
    "decisions",
    "fit_dependence",
    "lambda_for_budget",
    "order_by",
    "policy_for",
    "sinkhorn",
    "tradeoff_scores",
]

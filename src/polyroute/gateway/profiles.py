"""Turn a route profile's config into what a request needs: a policy and its gateway-side parts.

Why a module of its own: a profile may select a plain single-knob policy (lam / budget / floor), a
multi-call one (cascade, top-k) that needs an answer scorer or an aggregator backend, or a
trade-off with online load balancing that owns mutable state (a :class:`BiasBalancer` per
profile). Building those once here keeps ``service.py`` about lifecycle and ``chat.py`` about the
request flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from polyroute.config import BackendConfig, CascadeSpec, ProfileConfig, TopKSpec, TradeoffSpec
from polyroute.gateway.backends import Backend
from polyroute.policies import (
    AnswerScorer,
    BalancedPolicy,
    BiasBalancer,
    CascadePolicy,
    HeuristicScorer,
    Policy,
    Preference,
    TopKPolicy,
    TradeoffPolicy,
    policy_for,
)

#: How a route's requests are served.
PLAIN, CASCADE, TOPK = "plain", "cascade", "topk"


@dataclass(frozen=True)
class ProfilePlan:
    """A profile's policy and the parts its serving mode needs (unused ones are None)."""

    policy: Policy
    mode: str = PLAIN
    scorer: AnswerScorer | None = None
    aggregator: str | None = None
    balancer: BiasBalancer | None = None
    balance_target: float = 1.0
    #: Predicted dollars of one aggregation call, charged to every set of two or more.
    aggregator_cost: float = 0.0


#: Tokens assumed per answer when pricing an aggregation call before any answer exists (the same
#: output-length convention as the bundled data's cost rule).
ANSWER_TOKENS = 256


def aggregation_cost(spec: TopKSpec, backends: Mapping[str, BackendConfig]) -> float:
    """Predicted cost of merging ``max_k`` answers on the aggregator backend: its input is the
    question plus the answers, its output one answer (each ~``ANSWER_TOKENS``)."""
    backend = backends.get(spec.aggregator)
    if backend is None:
        return 0.0
    tokens_in = (spec.max_k + 1) * ANSWER_TOKENS
    return (tokens_in * backend.input_price_per_mtok
            + ANSWER_TOKENS * backend.output_price_per_mtok) / 1e6


def plan_for(profile: ProfileConfig, servable: Sequence[str],
             backends: Mapping[str, BackendConfig] | None = None) -> ProfilePlan:
    """The plan for ``profile``; ``servable`` are the router's models that have a backend, in the
    decider's order (a balancer's models must match the estimates the policy will see);
    ``backends`` price a top-k profile's aggregation call."""
    spec = profile.policy
    if spec is None:
        return ProfilePlan(policy_for(profile.preference()))
    if isinstance(spec, CascadeSpec):
        scorer = HeuristicScorer() if spec.scorer == "heuristic" else None
        return ProfilePlan(CascadePolicy(spec.threshold, lam=spec.lam, max_calls=spec.max_calls),
                           CASCADE, scorer=scorer)
    if isinstance(spec, TopKSpec):
        # The aggregator need not be a model the router knows: its call is priced from its
        # backend's list prices, so a second member must be worth the merge too.
        extra = aggregation_cost(spec, backends or {})
        return ProfilePlan(TopKPolicy(spec.lam, max_k=spec.max_k, dependence=spec.dependence,
                                      aggregator_cost=extra),
                           TOPK, aggregator=spec.aggregator, aggregator_cost=extra)
    assert isinstance(spec, TradeoffSpec)
    if spec.balance is None:
        return ProfilePlan(TradeoffPolicy(spec.lam))
    allowed = profile.models
    models = [m for m in servable if allowed is None or m in allowed]
    balancer = BiasBalancer(models, spec.balance.gamma)
    return ProfilePlan(BalancedPolicy(balancer, spec.lam), balancer=balancer,
                       balance_target=spec.balance.target)


def with_preference(profile: ProfileConfig, plan: ProfilePlan,
                    preference: Preference | None) -> ProfilePlan | None:
    """The plan for one request that may carry its own preference.

    A per-request λ keeps the profile's kind (a cascade stays a cascade, a balanced profile keeps
    its balancer) with that λ; a budget or floor asks for plain single-model routing, so it
    returns None (the caller routes plainly), as does any preference on a plain profile.
    """
    spec = profile.policy
    if preference is None:
        return plan
    if spec is None or preference.budget is not None or preference.floor is not None:
        return None
    lam = preference.lam
    if isinstance(spec, CascadeSpec):
        return replace(plan, policy=CascadePolicy(spec.threshold, lam=lam,
                                                  max_calls=spec.max_calls))
    if isinstance(spec, TopKSpec):
        return replace(plan, policy=TopKPolicy(lam, max_k=spec.max_k,
                                               aggregator_cost=plan.aggregator_cost,
                                               dependence=spec.dependence))
    if plan.balancer is not None:
        return replace(plan, policy=BalancedPolicy(plan.balancer, lam))
    return replace(plan, policy=TradeoffPolicy(lam))


def rebalance(plan: ProfilePlan, backends: Mapping[str, Backend]) -> None:
    """One balancer step from the backends' current load, just before a decision.

    Load = requests holding or waiting for a backend's slot; capacity = ``target`` × its
    ``max_concurrency``. Running per request (not on a timer) means the bias moves only while the
    profile has traffic, which is when it matters.
    """
    balancer = plan.balancer
    if balancer is None:
        return
    load = np.array([backends[m].load for m in balancer.models], dtype=float)
    capacity = np.array([plan.balance_target * backends[m].config.max_concurrency
                         for m in balancer.models], dtype=float)
    balancer.update(load, capacity)

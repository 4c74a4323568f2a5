"""Turn a route profile's config into what a request needs: a policy and its gateway-side parts.

What each policy kind builds, and how a per-request λ changes it, is declared once in the kind
registry (:mod:`polyroute.policies.kinds`); this module only dispatches to it, and keeps the one
gateway-side step that needs live backends: rebalancing a balanced profile from their load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from polyroute.config import ProfileConfig
from polyroute.gateway.backends import Backend
from polyroute.policies import Preference, policy_for
from polyroute.policies.kinds import (
    ANSWER_TOKENS,
    CASCADE,
    PLAIN,
    SINGLE,
    TOPK,
    BuildContext,
    Priced,
    ProfilePlan,
    aggregation_cost,
    kind_of,
)

__all__ = ["ANSWER_TOKENS", "CASCADE", "PLAIN", "SINGLE", "TOPK", "ProfilePlan",
           "aggregation_cost", "plan_for", "rebalance", "with_preference"]


def plan_for(profile: ProfileConfig, servable: Sequence[str],
             backends: Mapping[str, Priced] | None = None) -> ProfilePlan:
    """The plan for ``profile``; ``servable`` are the router's models that have a backend, in the
    decider's order (a balancer's models must match the estimates the policy will see);
    ``backends`` price a top-k profile's aggregation call."""
    spec = profile.policy
    if spec is None:
        return ProfilePlan(policy_for(profile.preference()))
    return kind_of(spec).build(spec, BuildContext(servable, profile.models, backends))


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
    return kind_of(spec).with_lam(spec, plan, preference.lam)


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

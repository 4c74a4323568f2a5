"""Route-profile plans: how a profile's policy settings become a policy object."""

from __future__ import annotations

import pytest

from polyroute.config import BackendConfig, ProfileConfig
from polyroute.gateway.profiles import ANSWER_TOKENS, plan_for, with_preference
from polyroute.policies import Preference, TopKPolicy


def _backend(name: str, price_in: float, price_out: float) -> BackendConfig:
    return BackendConfig.model_validate({"name": name, "base_url": "http://127.0.0.1:9/v1",
                                         "input_price_per_mtok": price_in,
                                         "output_price_per_mtok": price_out})


def test_topk_plan_prices_the_aggregation_call() -> None:
    profile = ProfileConfig.model_validate(
        {"policy": {"kind": "topk", "lam": 0.2, "max_k": 3, "aggregator": "judge"}})
    backends = {"judge": _backend("judge", 2.0, 8.0), "a": _backend("a", 0.1, 0.1)}
    plan = plan_for(profile, ["a"], backends)
    expected = (4 * ANSWER_TOKENS * 2.0 + ANSWER_TOKENS * 8.0) / 1e6
    assert isinstance(plan.policy, TopKPolicy)
    assert plan.policy.aggregator_cost == pytest.approx(expected)
    # A per-request λ keeps the set policy and its aggregation price.
    per_request = with_preference(profile, plan, Preference(lam=0.5))
    assert per_request is not None and isinstance(per_request.policy, TopKPolicy)
    assert per_request.policy.lam == 0.5
    assert per_request.policy.aggregator_cost == pytest.approx(expected)


def test_topk_plan_without_backend_prices_charges_nothing_extra() -> None:
    profile = ProfileConfig.model_validate(
        {"policy": {"kind": "topk", "lam": 0.2, "aggregator": "judge"}})
    assert plan_for(profile, ["a"]).policy.aggregator_cost == 0.0

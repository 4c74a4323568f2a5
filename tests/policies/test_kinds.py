"""The policy-kind registry: one declaration per kind, and the config union built from it."""

from __future__ import annotations

from typing import Literal

import pytest

from polyroute.config import ProfileConfig
from polyroute.policies import CascadePolicy, TopKPolicy, TradeoffPolicy
from polyroute.policies.kinds import (
    CASCADE,
    SINGLE,
    TOPK,
    BuildContext,
    KindSpec,
    PolicyKind,
    kind_of,
    policy_kinds,
    register_kind,
)

EXAMPLES = {"cascade": {"kind": "cascade", "threshold": 0.6},
            "topk": {"kind": "topk", "aggregator": "judge", "max_k": 2},
            "tradeoff": {"kind": "tradeoff", "lam": 0.3}}


def test_every_registered_kind_is_a_config_choice() -> None:
    assert set(policy_kinds()) == set(EXAMPLES)
    for name, raw in EXAMPLES.items():
        spec = ProfileConfig.model_validate({"policy": raw}).policy
        assert kind_of(spec).name == name
        assert isinstance(spec, policy_kinds()[name].spec)


@pytest.mark.parametrize(("name", "policy_type", "shape"), [
    ("cascade", CascadePolicy, CASCADE), ("topk", TopKPolicy, TOPK),
    ("tradeoff", TradeoffPolicy, SINGLE)])
def test_build_and_per_request_lambda_keep_the_kind(name, policy_type, shape) -> None:
    spec = ProfileConfig.model_validate({"policy": EXAMPLES[name]}).policy
    kind = kind_of(spec)
    plan = kind.build(spec, BuildContext(servable=["a", "b"]))
    assert isinstance(plan.policy, policy_type) and plan.mode == shape == kind.serving
    assert plan.multi_call == (shape != SINGLE)
    again = kind.with_lam(spec, plan, 0.9)
    assert isinstance(again.policy, policy_type) and again.policy.lam == 0.9
    assert again.mode == plan.mode


def test_a_kind_names_the_backends_its_spec_refers_to() -> None:
    spec = ProfileConfig.model_validate({"policy": EXAMPLES["topk"]}).policy
    assert kind_of(spec).backends_named(spec) == {"aggregator": "judge"}
    spec = ProfileConfig.model_validate({"policy": EXAMPLES["cascade"]}).policy
    assert kind_of(spec).backends_named(spec) == {}


def test_a_spec_whose_kind_literal_disagrees_is_refused() -> None:
    class Wrong(KindSpec):
        kind: Literal["other"]

    with pytest.raises(ValueError, match="Literal"):
        register_kind(PolicyKind("mine", Wrong, lambda s, c: None, lambda s, p, lam: p, SINGLE))
    assert "mine" not in policy_kinds()


def test_registering_a_name_twice_is_refused() -> None:
    existing = policy_kinds()["cascade"]
    with pytest.raises(ValueError, match="twice"):
        register_kind(PolicyKind("cascade", existing.spec, existing.build, existing.with_lam,
                                 existing.serving))


def test_the_config_refuses_a_backend_a_kind_names_but_nobody_configured() -> None:
    from polyroute.config import validate_config
    from polyroute.errors import ConfigError

    raw = {"backends": [{"name": "a", "base_url": "http://127.0.0.1:9/v1",
                         "input_price_per_mtok": 1, "output_price_per_mtok": 1}],
           "router": {"path": "r"}, "server": {"require_auth": False},
           "profiles": {"p": {"policy": {"kind": "topk", "aggregator": "nobody"}}}}
    with pytest.raises(ConfigError, match=r"profiles\.p\.policy\.aggregator: unknown backend"):
        validate_config(raw)

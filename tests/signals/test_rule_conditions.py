"""Rule conditions compiled from config and evaluated against known signal values."""

from __future__ import annotations

import pytest

from polyroute.signals import (
    RuleConfig,
    SignalInputs,
    SignalsConfig,
    SignalSet,
    SignalValues,
    compile_rules,
    first_match,
)

SIGNALS = SignalsConfig.model_validate({"keywords": {"code": {"words": ["python"]}},
                                        "domains": {"legal": {"examples": ["contract"]}}})


def values(text="hello there", tags=("free",), body=None) -> SignalValues:
    return SignalValues(SignalSet(SIGNALS, embed=lambda texts: [[1.0]] * len(texts)),
                        SignalInputs(body=body or {"messages": []}, text=text, key_id="k1",
                                     key_tags=frozenset(tags)))


def holds(when: dict, v: SignalValues) -> bool:
    [rule] = compile_rules([RuleConfig.model_validate(
        {"name": "r", "when": when, "then": {"block": "no"}})], SIGNALS)
    return rule.holds(v)


@pytest.mark.parametrize("when, expected", [
    ({"signal": "keyword.code"}, True),
    ({"signal": "keyword.code", "value": False}, False),
    ({"signal": "prompt_tokens", "op": "gt", "value": 3}, True),
    ({"signal": "prompt_tokens", "op": "le", "value": 3}, False),
    ({"signal": "key", "op": "in", "value": ["k0", "k1"]}, True),
    ({"signal": "key", "op": "ne", "value": "k1"}, False),
    ({"signal": "key_tags", "op": "contains", "value": "free"}, True),
    ({"signal": "key_tags", "op": "in", "value": ["paid", "free"]}, True),
    ({"signal": "key_tags", "op": "eq", "value": ["free"]}, True),
    ({"signal": "text", "op": "contains", "value": "Python"}, True),
    ({"signal": "text", "op": "matches", "value": r"^write\b"}, True),
    ({"signal": "language", "op": "eq", "value": "de"}, False),
    ({"all": [{"signal": "keyword.code"}, {"signal": "key", "op": "eq", "value": "k1"}]}, True),
    ({"all": [{"signal": "keyword.code"}, {"signal": "key", "op": "eq", "value": "k2"}]}, False),
    ({"any": [{"signal": "has_tools"}, {"signal": "key", "op": "eq", "value": "k1"}]}, True),
    ({"not": {"signal": "has_tools"}}, True),
    ({"not": {"any": [{"signal": "keyword.code"}, {"signal": "has_images"}]}}, False),
])
def test_conditions(when, expected):
    assert holds(when, values("write some Python code for me")) is expected


def test_an_unknown_value_matches_no_comparison():
    v = values()
    assert not holds({"signal": "metadata.team", "op": "eq", "value": "ml"}, v)
    assert not holds({"signal": "metadata.team", "op": "ne", "value": "ml"}, v)
    assert holds({"not": {"signal": "metadata.team", "op": "eq", "value": "ml"}}, v)


def test_first_match_is_in_config_order_and_rules_know_when_they_need_the_analysis():
    rules = compile_rules([RuleConfig.model_validate(r) for r in [
        {"name": "tools", "when": {"signal": "has_tools"}, "then": {"pin": "a"}},
        {"name": "free", "when": {"signal": "key_tags", "op": "contains", "value": "free"},
         "then": {"profile": "cheap"}},
        {"name": "any-key", "when": {"signal": "key", "op": "ne", "value": ""},
         "then": {"block": "x"}},
        {"name": "legal", "when": {"signal": "domain", "op": "eq", "value": "legal"},
         "then": {"models": ["a"]}},
    ]], SIGNALS)
    assert first_match(rules, values()).name == "free"
    assert first_match(rules, values(tags=())).name == "any-key"
    assert [r.late for r in rules] == [False, False, False, True]
    assert rules[3].reads == ("domain",)

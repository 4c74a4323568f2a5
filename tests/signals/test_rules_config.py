"""Rules, routes and signals in the gateway config: every problem named on its own line."""

from __future__ import annotations

import pytest

from polyroute.config import validate_config
from polyroute.errors import ConfigError


def config(**sections) -> dict:
    return {"backends": [{"name": n, "base_url": "http://127.0.0.1:1/v1",
                          "input_price_per_mtok": 1, "output_price_per_mtok": 1}
                         for n in ("alpha", "beta")],
            "router": {"path": "r"}, "server": {"require_auth": False},
            "profiles": {"cheap": {"lam": 10}}, **sections}


def problems(**sections) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_config(config(**sections))
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def test_a_good_config_with_rules_routes_and_signals():
    cfg = validate_config(config(
        signals={"keywords": {"code": {"words": ["python"]}},
                 "domains": {"legal": {"examples": ["draft a contract"], "threshold": 0.4}}},
        rules=[{"name": "code", "when": {"signal": "keyword.code"}, "then": {"pin": "alpha"}},
               {"name": "legal", "when": {"signal": "domain", "op": "eq", "value": "legal"},
                "then": {"models": ["beta"]}},
               {"name": "team", "when": {"signal": "metadata.team", "op": "eq", "value": "ml"},
                "then": {"profile": "cheap"}}],
        routes=[{"name": "review", "description": "code review", "models": ["alpha"]}],
        keys=[{"id": "k", "sha256": "0" * 64, "tags": ["free"]}]))
    assert [r.name for r in cfg.rules] == ["code", "legal", "team"]
    assert cfg.keys[0].tags == ("free",)


def test_unknown_signals_models_and_profiles_are_refused_each_on_its_line():
    lines = problems(rules=[
        {"name": "r0", "when": {"any": [{"signal": "keyword.code"},
                                        {"signal": "prompt_tokens", "op": "gt", "value": 5}]},
         "then": {"pin": "zeta"}},
        {"name": "r1", "when": {"signal": "language", "op": "gt", "value": 3},
         "then": {"profile": "nope"}},
        {"name": "r2", "when": {"not": {"signal": "domain"}}, "then": {"models": ["alpha", "x"]}},
    ], routes=[{"name": "rt", "description": "d", "models": ["omega"]}])
    assert lines[0].startswith("rules[0].when.any[0].signal: unknown signal 'keyword.code'; "
                               "known: ")
    assert "prompt_tokens" in lines[0] and "metadata.<field>" in lines[0]
    assert lines[1].startswith("rules[0].then.pin: unknown model 'zeta'")
    assert lines[2] == "rules[1].when.op: 'gt' cannot compare string signal 'language' " \
                       "(it compares numbers)"
    assert lines[3].startswith("rules[1].then.profile: unknown profile 'nope'; known: cheap")
    assert lines[4].startswith("rules[2].when.not.signal: unknown signal 'domain'")
    assert lines[5].startswith("rules[2].then.models: unknown model(s) x")
    assert lines[6].startswith("routes[0].models: unknown model(s) omega")
    assert len(lines) == 7


@pytest.mark.parametrize("rule, fragment", [
    ({"name": "r", "when": {"signal": "text", "op": "matches", "value": "("},
      "then": {"pin": "alpha"}},
     "is not a valid regular expression"),
    ({"name": "r", "when": {"signal": "key", "op": "in", "value": "k"}, "then": {"pin": "alpha"}},
     "'in' needs a non-empty list"),
    ({"name": "r", "when": {"signal": "prompt_tokens", "value": "many"}, "then": {"pin": "alpha"}},
     "'many' is not a number"),
    ({"name": "r", "when": {"signal": "has_tools"}, "then": {"pin": "alpha", "block": "x"}},
     "rules[0].then: give exactly one of profile, models, pin or block (got pin, block)"),
    ({"name": "r", "when": {"signal": "has_tools", "all": [{"signal": "stream"}]},
      "then": {"pin": "alpha"}}, "rules[0].when: a condition is exactly one of"),
    ({"name": "r", "when": {"signal": "has_tools"}, "then": {"block": "two\nlines"}},
     "printable ASCII on one line"),
    ({"name": "bad name", "when": {"signal": "has_tools"}, "then": {"pin": "alpha"}},
     "rules[0].name: rule name 'bad name'"),
])
def test_malformed_rules(rule, fragment):
    assert any(fragment in line for line in problems(rules=[rule])), problems(rules=[rule])


def test_duplicate_rule_and_route_names():
    rule = {"name": "r", "when": {"signal": "has_tools"}, "then": {"pin": "alpha"}}
    route = {"name": "x", "description": "d", "models": ["alpha"]}
    lines = problems(rules=[rule, rule], routes=[route, route])
    assert "rules[1].name: another rule is also named 'r'" in lines
    assert "routes[1].name: another route is also named 'x'" in lines


def test_signal_sections_are_checked():
    lines = problems(signals={"keywords": {"k": {}}, "domains": {"d": {"examples": []}}})
    assert any(line.startswith("signals.keywords.k: give words or patterns") for line in lines)
    assert any(line.startswith("signals.domains.d.examples:") for line in lines)


def test_config_check_refuses_a_rule_naming_an_unknown_signal(tmp_path, capsys):
    import yaml

    from polyroute.cli import main

    raw = config(rules=[{"name": "r", "when": {"signal": "langauge", "op": "eq", "value": "de"},
                         "then": {"profile": "cheap"}}])
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["config", "check", str(path), "--no-router"]) == 2
    err = capsys.readouterr().err
    assert "rules[0].when.signal: unknown signal 'langauge'; known: " in err
    raw["rules"][0]["when"]["signal"] = "language"
    path.write_text(yaml.safe_dump(raw))
    assert main(["config", "check", str(path), "--no-router"]) == 0
    assert "1 rule(s), 0 named route(s)" in capsys.readouterr().out


def test_each_rule_problem_counts_as_one():
    with pytest.raises(ConfigError) as info:
        validate_config(config(rules=[
            {"name": "r", "when": {"signal": "nope"}, "then": {"pin": "nada"}}]))
    assert str(info.value).splitlines()[0].endswith("invalid configuration (2 problems):")

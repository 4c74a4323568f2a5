"""End to end: decision rules, signals and named routes on a real gateway (127.0.0.1).

In the test world math goes to alpha and poetry to beta at λ = 0, gamma is cheap; each rule
below changes that in a way only the rule can explain.
"""

from __future__ import annotations

import json

from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, POETRY_PROMPT

from polyroute import Pipeline
from polyroute.cli import main
from polyroute.gateway import hash_key

TOOLS = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]


def record(gw, response):
    gw.flush()
    return gw.gateway.store.get_request(response.headers["x-polyroute-request-id"])


def test_a_block_rule_refuses_before_anything_is_routed(gateway_factory, standins):
    gw = gateway_factory({
        "signals": {"keywords": {"secret": {"words": ["password"], "patterns": [r"sk-\w{8,}"]}}},
        "rules": [{"name": "no-secrets", "when": {"signal": "keyword.secret"},
                   "then": {"block": "requests carrying secrets are refused"}}]})
    r = gw.chat("my Password is hunter2, solve 2x = 4")
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["message"] == "requests carrying secrets are refused"
    assert error["code"] == "blocked_by_rule"
    assert r.headers["x-polyroute-rule"] == "no-secrets"
    assert r.headers["x-polyroute-ended-by"] == \
        "rule no-secrets: requests carrying secrets are refused"
    assert sum(s.calls for s in standins.values()) == 0
    rec = record(gw, r)
    assert rec.status == "error" and rec.http_status == 403 and rec.rule == "no-secrets"
    assert rec.error == "rule no-secrets: requests carrying secrets are refused"
    assert rec.candidates == ()  # blocked before the decision
    ok = gw.chat(MATH_PROMPT)
    assert ok.status_code == 200 and "x-polyroute-rule" not in ok.headers
    assert record(gw, ok).rule is None


def test_a_pin_rule_on_request_metadata_body_or_header(gateway_factory, standins):
    gw = gateway_factory({"rules": [
        {"name": "ml-team", "when": {"signal": "metadata.team", "op": "eq", "value": "ml"},
         "then": {"pin": "beta"}}]})
    r = gw.chat(MATH_PROMPT, metadata={"team": "ml"})
    assert r.status_code == 200
    assert r.headers["x-polyroute-model"] == "beta"  # math would go to alpha
    assert r.headers["x-polyroute-rule"] == "ml-team"
    rec = record(gw, r)
    assert rec.rule == "ml-team" and [c.model for c in rec.candidates] == ["beta"]
    assert rec.profile == "polyroute-auto"  # the profile asked for is kept in the record
    with gw.client() as c:
        h = c.post("/v1/chat/completions", headers={"x-polyroute-meta-team": "ml"},
                   json={"model": "polyroute-auto",
                         "messages": [{"role": "user", "content": MATH_PROMPT}]})
    assert h.headers["x-polyroute-model"] == "beta"
    assert gw.chat(MATH_PROMPT, metadata={"team": "web"}).headers["x-polyroute-model"] == "alpha"


def test_a_profile_switch_by_key_tag(gateway_factory, standins):
    gw = gateway_factory({
        "keys": [{"id": "one", "sha256": hash_key(KEY), "tags": ["free-tier"]},
                 {"id": "two", "sha256": hash_key(OTHER_KEY)}],
        "rules": [{"name": "free-is-cheap",
                   "when": {"signal": "key_tags", "op": "contains", "value": "free-tier"},
                   "then": {"profile": "polyroute-cheap"}}]})
    free = gw.chat(MATH_PROMPT, key=KEY)
    assert free.headers["x-polyroute-model"] == "gamma"
    assert free.headers["x-polyroute-profile"] == "polyroute-cheap"
    assert free.headers["x-polyroute-rule"] == "free-is-cheap"
    assert record(gw, free).profile == "polyroute-cheap"
    paid = gw.chat(MATH_PROMPT, key=OTHER_KEY)
    assert paid.headers["x-polyroute-model"] == "alpha"
    assert "x-polyroute-rule" not in paid.headers


def test_a_models_rule_restricts_the_candidates_and_the_router_ranks_them(gateway_factory,
                                                                          standins):
    gw = gateway_factory({"rules": [
        {"name": "tools-elsewhere", "when": {"signal": "has_tools"},
         "then": {"models": ["beta", "gamma"]}}]})
    r = gw.chat(MATH_PROMPT, tools=TOOLS)
    # Among beta (0 on math) and gamma (0.3) the router picks gamma, beta as the fallback.
    assert r.headers["x-polyroute-model"] == "gamma"
    assert [c.model for c in record(gw, r).candidates] == ["gamma", "beta"]
    assert gw.chat(MATH_PROMPT).headers["x-polyroute-model"] == "alpha"
    # A backend named directly outside the allowed models is refused, naming the rule.
    named = gw.chat(MATH_PROMPT, model="alpha", tools=TOOLS)
    assert named.status_code == 403 and "rule tools-elsewhere" in named.json()["error"]["message"]
    assert standins["alpha"].calls == 1


def test_a_domain_signal_from_labelled_examples(gateway_factory, standins):
    gw = gateway_factory({
        "signals": {"domains": {"algebra": {"examples": ["Solve the equation 4x + 9 = 21 for x.",
                                                         "What is 6 times 5 plus 2?"],
                                            "threshold": 0.8}}},
        "rules": [{"name": "algebra-to-gamma",
                   "when": {"signal": "domain", "op": "eq", "value": "algebra"},
                   "then": {"pin": "gamma"}}]})
    math = gw.chat(MATH_PROMPT)
    assert math.headers["x-polyroute-model"] == "gamma"
    assert math.headers["x-polyroute-rule"] == "algebra-to-gamma"
    poem = gw.chat(POETRY_PROMPT)
    assert poem.headers["x-polyroute-model"] == "beta"
    assert "x-polyroute-rule" not in poem.headers


def test_a_rule_on_the_routers_estimates(gateway_factory, standins):
    gw = gateway_factory({"rules": [
        {"name": "alpha-goes-cheap",
         "when": {"signal": "router.best_model", "op": "eq", "value": "alpha"},
         "then": {"profile": "polyroute-cheap"}}]})
    assert gw.chat(MATH_PROMPT).headers["x-polyroute-model"] == "gamma"
    assert gw.chat(POETRY_PROMPT).headers["x-polyroute-model"] == "beta"


class CountingFeaturizer:
    """Wraps the router's featurizer and counts the texts it embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.texts = inner, []

    @property
    def id(self) -> str:
        return self.inner.id

    def encode(self, texts, **kwargs):
        self.texts += list(texts)
        return self.inner.encode(texts, **kwargs)


def test_late_signals_reuse_the_decisions_embedding(gateway_factory, router_dir, standins):
    pipeline = Pipeline.load(router_dir, cache=False)
    counting = pipeline._featurizer = CountingFeaturizer(pipeline.featurizer)
    gw = gateway_factory({
        "signals": {"domains": {"verse": {"examples": ["Write a poem about the moon."]}}},
        "rules": [{"name": "legal", "when": {"signal": "domain.verse", "op": "lt", "value": -2},
                   "then": {"block": "never"}}]}, pipeline=pipeline)
    counting.texts.clear()  # warm-up and the domain's examples, embedded at start
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200 and r.headers["x-polyroute-model"] == "alpha"
    assert counting.texts == [MATH_PROMPT]  # once, for the signal and the decision alike


def test_named_routes_restrict_to_their_models(gateway_factory, standins):
    gw = gateway_factory({"routes": [
        {"name": "verse", "description": "Write a short poem about the river at dusk.",
         "examples": ["Compose a haiku about a garden in the rain."], "models": ["gamma"],
         "threshold": 0.6},
        {"name": "sums", "description": "arithmetic with large numbers", "models": ["alpha"],
         "threshold": 0.99}]})
    poem = gw.chat(POETRY_PROMPT)
    assert poem.headers["x-polyroute-model"] == "gamma"  # beta without the route
    assert poem.headers["x-polyroute-route"] == "verse"
    assert record(gw, poem).named_route == "verse"
    math = gw.chat(MATH_PROMPT)
    assert math.headers["x-polyroute-model"] == "alpha" and "x-polyroute-route" not in \
        math.headers
    # A model added to a route is a config change only: the same router, no retraining.
    wider = gateway_factory({"routes": [
        {"name": "verse", "description": "Write a short poem about the river at dusk.",
         "models": ["gamma", "beta"], "threshold": 0.6}]})
    again = wider.chat(POETRY_PROMPT)
    assert again.headers["x-polyroute-route"] == "verse"
    assert again.headers["x-polyroute-model"] == "beta"


def test_a_rule_pinning_wins_over_named_routes(gateway_factory, standins):
    gw = gateway_factory({
        "rules": [{"name": "json-to-alpha", "when": {"signal": "json_mode"},
                   "then": {"pin": "alpha"}}],
        "routes": [{"name": "verse", "description": "Write a short poem about the river.",
                    "models": ["gamma"], "threshold": 0.5}]})
    r = gw.chat(POETRY_PROMPT, response_format={"type": "json_object"})
    assert r.headers["x-polyroute-model"] == "alpha"
    assert r.headers["x-polyroute-rule"] == "json-to-alpha" and "x-polyroute-route" not in \
        r.headers


def test_logs_show_the_rule(gateway_factory, standins, capsys):
    gw = gateway_factory({"rules": [{"name": "tools-to-beta", "when": {"signal": "has_tools"},
                                     "then": {"pin": "beta"}}]})
    r = gw.chat(MATH_PROMPT, tools=TOOLS)
    gw.flush()
    store = str(gw.config.store.path)
    capsys.readouterr()
    assert main(["logs", "--store", store, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["requests"]
    assert row["id"] == r.headers["x-polyroute-request-id"] and row["rule"] == "tools-to-beta"
    assert main(["logs", "--store", store]) == 0
    assert "tools-to-beta" in capsys.readouterr().out


def test_the_signal_stages_run_only_where_rules_or_routes_are_configured(gateway_factory):
    from polyroute.gateway.stages import PIPELINE

    plain = gateway_factory()
    assert plain.gateway.stages == PIPELINE
    ruled = gateway_factory({"rules": [{"name": "r", "when": {"signal": "has_tools"},
                                        "then": {"pin": "beta"}}]})
    assert [n for n, _ in ruled.gateway.stages] == \
        ["admit", "parse", "signals", "rules", "decide", "reserve", "serve"]

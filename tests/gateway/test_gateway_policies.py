"""End to end: profiles with a cascade, a top-k set with an aggregator, and online load balancing
(config ``profiles.<name>.policy``), against the stand-in backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from gateway_world import (
    KEY,
    MATH_PROMPT,
    POETRY_PROMPT,
    MeanRouter,
    make_outcomes,
    wait_for,
)

from polyroute import Pipeline
from polyroute.config import validate_config
from polyroute.errors import ConfigError

REFUSAL = "I'm sorry, but I can't help with that."
#: gamma's estimated quality is 0.3 everywhere: a threshold of 0.2 lets its normal answers pass
#: (0.3 × 1) and a refusal escalate (0.3 × 0.1).
CASCADE = {"policy": {"kind": "cascade", "threshold": 0.2, "lam": 0.1, "scorer": "heuristic"}}


def _record(gw, response):
    gw.flush()
    return gw.gateway.store.get_request(response.headers["x-polyroute-request-id"])


# -- cascade -------------------------------------------------------------------------------------
def test_cascade_accepts_a_good_cheap_answer(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE}})
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade")
    assert r.status_code == 200, r.text
    assert r.headers["x-polyroute-model"] == "gamma"
    assert r.headers["x-polyroute-cascade"] == "gamma"
    assert r.json()["choices"][0]["message"]["content"] == "gamma answers"
    assert standins["alpha"].calls == 0
    assert _record(gw, r).chosen == "gamma"


def test_cascade_escalates_a_refusal_and_charges_both_calls(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE}})
    standins["gamma"].reply = REFUSAL
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade")
    assert r.status_code == 200, r.text
    assert r.headers["x-polyroute-model"] == "alpha"
    assert r.headers["x-polyroute-cascade"] == "gamma>alpha"
    assert r.headers["x-polyroute-fallbacks"] == "0"
    assert r.json()["choices"][0]["message"]["content"] == "alpha answers"
    assert standins["gamma"].calls == 1 and standins["alpha"].calls == 1
    rec = _record(gw, r)
    assert [(a.backend, a.outcome) for a in rec.attempts] == [("gamma", "ok"), ("alpha", "ok")]
    assert rec.chosen == "alpha"
    prices = {b.name: b for b in gw.config.backends}
    expected = sum((10 * prices[m].input_price_per_mtok + 20 * prices[m].output_price_per_mtok)
                   / 1e6 for m in ("gamma", "alpha"))
    assert rec.cost == pytest.approx(expected)
    assert rec.prompt_tokens == 20 and rec.completion_tokens == 40


def test_cascade_skips_an_unavailable_step(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE}})
    standins["gamma"].mode = "500"
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade")
    assert r.status_code == 200 and r.headers["x-polyroute-model"] == "alpha"
    assert r.headers["x-polyroute-cascade"] == "alpha"
    assert r.headers["x-polyroute-fallbacks"] == "1"


def test_cascade_that_cannot_answer_is_an_openai_error(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": {**CASCADE,
                                                             "models": ["gamma", "alpha"]}}})
    standins["gamma"].mode = standins["alpha"].mode = "500"
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade")
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "backend_error" and "gamma" in error["message"]
    assert _record(gw, r).cost == 0


def test_per_request_preference_on_a_cascade_profile(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE}})
    standins["gamma"].reply = REFUSAL
    # A per-request λ keeps the cascade: at λ = 100 the chain ends at gamma (no escalation).
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade", polyroute={"lam": 100})
    assert r.headers["x-polyroute-cascade"] == "gamma" and r.headers["x-polyroute-model"] == "gamma"
    # A floor asks for plain routing: the cheapest model estimated to reach it, unchecked.
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade", polyroute={"floor": 0.9})
    assert r.headers["x-polyroute-model"] == "alpha" and "x-polyroute-cascade" not in r.headers


# -- top-k ---------------------------------------------------------------------------------------
TOPK = {"policy": {"kind": "topk", "lam": 0.0, "max_k": 2, "aggregator": "gamma"}}


def test_topk_asks_the_set_and_returns_the_aggregated_answer(gateway_factory, standins):
    pipeline = Pipeline(MeanRouter(), featurizer="tfidf", cache=False).fit(make_outcomes())
    gw = gateway_factory({"profiles": {"polyroute-set": TOPK}}, pipeline=pipeline)
    standins["gamma"].reply = "merged answer"
    r = gw.chat(POETRY_PROMPT, model="polyroute-set", temperature=0.2)
    assert r.status_code == 200, r.text
    assert r.headers["x-polyroute-model"] == "gamma"
    assert r.headers["x-polyroute-set"] == "alpha,beta"
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "merged answer"
    assert standins["alpha"].calls == 1 and standins["beta"].calls == 1
    [merge] = standins["gamma"].requests
    assert merge["model"] == "upstream-gamma" and merge["temperature"] == 0.2
    prompt = merge["messages"][-1]["content"]
    assert POETRY_PROMPT in prompt and "alpha answers" in prompt and "beta answers" in prompt
    rec = _record(gw, r)
    assert sorted(a.backend for a in rec.attempts) == ["alpha", "beta", "gamma"]
    assert rec.prompt_tokens == 30 and rec.completion_tokens == 60 and rec.cost > 0


def test_topk_without_a_second_answer_skips_aggregation(gateway_factory, standins):
    pipeline = Pipeline(MeanRouter(), featurizer="tfidf", cache=False).fit(make_outcomes())
    gw = gateway_factory({"profiles": {"polyroute-set": TOPK}}, pipeline=pipeline)
    standins["beta"].mode = "500"
    r = gw.chat(POETRY_PROMPT, model="polyroute-set")
    assert r.status_code == 200, r.text
    assert r.headers["x-polyroute-model"] == "alpha"
    assert r.json()["choices"][0]["message"]["content"] == "alpha answers"
    assert standins["gamma"].calls == 0


def test_topk_set_of_one_is_a_single_call(gateway_factory, standins):
    # The kNN router is sure alpha answers math: nothing to add to the set.
    gw = gateway_factory({"profiles": {"polyroute-set": TOPK}})
    r = gw.chat(MATH_PROMPT, model="polyroute-set")
    assert r.status_code == 200 and r.headers["x-polyroute-model"] == "alpha"
    assert r.headers["x-polyroute-set"] == "alpha"
    assert standins["beta"].calls == 0 and standins["gamma"].calls == 0


# -- config --------------------------------------------------------------------------------------
def test_policy_config_errors(router_dir, tmp_path, standin_urls):
    from gateway_world import base_config

    base = base_config(router_dir, tmp_path / "s.sqlite", standin_urls)
    cases = {
        "unknown-kind": ({"kind": "magic"}, "does not match any of the expected tags"),
        "bad-threshold": ({"kind": "cascade", "threshold": 1.5}, "threshold"),
        "no-aggregator": ({"kind": "topk"}, "aggregator: required key is missing"),
        "bad-aggregator": ({"kind": "topk", "aggregator": "delta"},
                           "policy.aggregator: unknown backend 'delta'"),
        "bad-gamma": ({"kind": "tradeoff", "balance": {"gamma": 0}}, "gamma"),
    }
    for name, (policy, message) in cases.items():
        raw = dict(base, profiles={name: {"policy": policy}})
        with pytest.raises(ConfigError, match=message):
            validate_config(raw)
    with pytest.raises(ConfigError, match="give either policy"):
        validate_config(dict(base, profiles={"p": {"lam": 1, "policy": {"kind": "tradeoff"}}}))


# -- online load balancing -------------------------------------------------------------------------
def test_balanced_profile_spreads_load_off_a_busy_backend(gateway_factory, standins):
    gw = gateway_factory(
        {"profiles": {"polyroute-balanced": {"policy": {
            "kind": "tradeoff", "lam": 0.0, "balance": {"gamma": 1.0, "target": 0.9}}}}},
        backends={"alpha": {"max_concurrency": 2, "queue_timeout": 30}})
    standins["alpha"].mode = "hold"  # alpha, the router's favourite for math, is slow
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(gw.chat, MATH_PROMPT, "polyroute-balanced") for _ in range(2)]
        wait_for(lambda: standins["alpha"].calls == 2, "alpha to hold two requests")
        # alpha is at its capacity: the balancer's bias sends the next request elsewhere at
        # once instead of queueing it behind the held ones (or rejecting it).
        spilled = gw.chat(MATH_PROMPT, "polyroute-balanced")
        assert spilled.status_code == 200
        assert spilled.headers["x-polyroute-model"] in ("beta", "gamma")
        assert spilled.headers["x-polyroute-fallbacks"] == "0"
        assert standins["alpha"].calls == 2
        standins["alpha"].gate.set()
        assert [f.result().headers["x-polyroute-model"] for f in held] == ["alpha", "alpha"]
    # Once alpha's load is gone the bias recovers and alpha answers math again.
    assert gw.chat(MATH_PROMPT, "polyroute-balanced").headers["x-polyroute-model"] == "alpha"


# -- bandit learning online ----------------------------------------------------------------------
def test_bandit_router_learns_from_feedback_and_routes_differently(gateway_factory, standins):
    # n_components below the TF-IDF world's rank (see the report on null-space whitening).
    pipeline = Pipeline("bandit", featurizer="tfidf", cache=False,
                        router_params={"n_components": 8}).fit(make_outcomes())
    gw = gateway_factory({"profiles": {"polyroute-mid": {"lam": 0.5}}}, pipeline=pipeline)
    # At λ = 0.5, math goes to alpha (≈1.0 − 0.5) rather than cheap, mediocre gamma (≈0.3).
    before = gw.chat(MATH_PROMPT, model="polyroute-mid")
    assert before.headers["x-polyroute-model"] == "alpha"
    gamma_before = {c.model: c.estimated_quality for c in _record(gw, before).candidates}["gamma"]
    for _ in range(8):  # users of the cheap profile report that gamma answers math perfectly
        r = gw.chat(MATH_PROMPT, model="polyroute-cheap")
        assert r.headers["x-polyroute-model"] == "gamma"
        with gw.client(KEY) as c:
            fb = c.post("/v1/feedback", json={
                "request_id": r.headers["x-polyroute-request-id"], "score": 1.0})
        assert fb.status_code == 200 and fb.json()["learned"] is True
    after = gw.chat(MATH_PROMPT, model="polyroute-mid")
    gamma_after = {c.model: c.estimated_quality for c in _record(gw, after).candidates}["gamma"]
    assert gamma_after > gamma_before + 0.2
    assert after.headers["x-polyroute-model"] == "gamma"


def test_answer_text_tells_a_tool_call_from_an_empty_answer():
    import json

    from polyroute.gateway.cascade import answer_text
    from polyroute.gateway.forward import Answer

    def answer(message):
        body = json.dumps({"choices": [{"message": message}]}).encode()
        return Answer(None, 200, body, "application/json", None, 1.0)  # type: ignore[arg-type]

    assert answer_text(answer({"role": "assistant", "content": "42"})) == "42"
    assert answer_text(answer({"role": "assistant", "content": ""})) == ""
    assert answer_text(answer({"role": "assistant", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})) == "ab"
    assert answer_text(answer({"role": "assistant", "content": None,
                               "tool_calls": [{"id": "t", "type": "function"}]})) is None

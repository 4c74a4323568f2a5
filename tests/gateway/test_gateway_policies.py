"""End to end: profiles with a cascade, a top-k set with an aggregator, and online load balancing
(config ``profiles.<name>.policy``), against the stand-in backends."""

from __future__ import annotations

import numpy as np
import pytest
from gateway_world import MATH_PROMPT, POETRY_PROMPT, make_outcomes

from polyroute import Pipeline
from polyroute.config import validate_config
from polyroute.errors import ConfigError
from polyroute.routers import Router

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


def test_streamed_request_to_a_cascade_profile_is_routed_plainly(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE}})
    standins["gamma"].reply = REFUSAL
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=True)
    assert r.status_code == 200
    assert r.headers["x-polyroute-model"] == "gamma"  # the chain's first model, unchecked
    assert "x-polyroute-cascade" not in r.headers


# -- top-k ---------------------------------------------------------------------------------------
class MeanRouter(Router):
    """Every prompt gets the models' mean training quality: alpha and beta 0.5, gamma 0.3, so at
    λ = 0 the best pair is {alpha, beta}."""

    def __init__(self) -> None:
        pass

    def _fit(self, outcomes, features) -> None:
        self.means_ = np.nanmean(outcomes.quality, axis=0)

    def _estimate(self, features):
        return np.tile(self.means_, (features.shape[0], 1)), None


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

"""Shadow mode end to end: the default model serves, the routed choice is recorded, and sampled
requests are compared blind by a judge backend in the background."""

from __future__ import annotations

import pytest
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, wait_for

from polyroute.config import validate_config
from polyroute.errors import ConfigError
from polyroute.gateway.auth import hash_key
from polyroute.gateway.shadow import routed_first


def _record(gw, response):
    gw.flush()
    return gw.gateway.store.get_request(response.headers["x-polyroute-request-id"])


def _routed_choice(gateway_factory) -> str:
    plain = gateway_factory()
    return plain.chat(MATH_PROMPT).headers["x-polyroute-model"]


def _served_for(routed: str) -> str:
    return "gamma" if routed != "gamma" else "beta"


def test_the_default_model_serves_and_the_routed_choice_is_recorded(gateway_factory, standins):
    routed = _routed_choice(gateway_factory)
    served = _served_for(routed)
    gw = gateway_factory({"profiles": {"polyroute-auto": {"lam": 0.0,
                                                          "shadow": {"serve": served}}}})
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200 and r.headers["x-polyroute-model"] == served
    rec = _record(gw, r)
    shadow = rec.explain["shadow"]
    assert shadow["served"] == served and shadow["routed"] == routed
    assert shadow["ranking"][0] == routed and shadow["sampled"] is False
    assert rec.candidates[0].model == served  # the routed ranking follows as fallbacks
    assert {c.model for c in rec.candidates} == set(shadow["ranking"])
    assert gw.gateway.store.shadow_comparisons() == []


def test_a_sampled_request_is_judged_blind_in_the_background(gateway_factory, standins):
    routed = _routed_choice(gateway_factory)
    served = _served_for(routed)
    judge = ({"alpha", "beta", "gamma"} - {routed, served}).pop()
    standins[judge].reply = "Answer 1 is right. Winner: 1"
    standins[routed].reply = "x = 3 (the routed answer)"
    standins[served].reply = "x = 4 (the served answer)"
    gw = gateway_factory({"profiles": {"polyroute-auto": {"lam": 0.0, "shadow": {
        "serve": served, "sample": 1.0, "judge": judge}}}})
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "x = 4 (the served answer)"
    rid = r.headers["x-polyroute-request-id"]
    wait_for(lambda: gw.gateway.store.shadow_comparisons(), "the shadow comparison")
    (c,) = gw.gateway.store.shadow_comparisons()
    assert (c.request_id, c.served, c.routed) == (rid, served, routed)
    # "Winner: 1" names whichever answer was shown first, drawn per request.
    assert c.verdict == ("routed" if routed_first(rid) else "served")
    assert c.routed_cost > 0 and c.judge_cost > 0
    assert c.served_cost == pytest.approx(_record(gw, r).cost)
    # The judge saw both answers, never the models' names.
    judged = standins[judge].requests[-1]["messages"][0]["content"]
    assert "the routed answer" in judged and "the served answer" in judged
    assert routed not in judged.replace("routed answer", "") and served not in judged
    # The operator pays for the shadow calls, not the client's key.
    # (the store also holds the request that found the routed model)
    requests = gw.gateway.store.recent_requests()
    assert gw.gateway.store.spend_by_key()["one"] == pytest.approx(sum(q.cost for q in requests))


def test_streams_are_not_sampled_and_a_key_setting_wins(gateway_factory, standins):
    routed = _routed_choice(gateway_factory)
    served = _served_for(routed)
    gw = gateway_factory({
        "profiles": {"polyroute-auto": {"lam": 0.0, "shadow": {
            "serve": served, "sample": 1.0, "judge": routed}}},
        "keys": [{"id": "one", "sha256": hash_key(KEY)},
                 {"id": "two", "sha256": hash_key(OTHER_KEY), "shadow": {"serve": routed}}]})
    with gw.client() as c, c.stream(
            "POST", "/v1/chat/completions",
            json={"model": "polyroute-auto", "stream": True,
                  "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        b"".join(r.iter_raw())
    wait_for(lambda: _record(gw, r) is not None and _record(gw, r).status == "ok", "the record")
    assert _record(gw, r).explain["shadow"]["sampled"] is False
    r2 = gw.chat(MATH_PROMPT, key=OTHER_KEY)
    assert r2.headers["x-polyroute-model"] == routed  # key two's shadow serves another model
    assert _record(gw, r2).explain["shadow"]["served"] == routed
    gw.flush()
    assert gw.gateway.store.shadow_comparisons() == []


def test_shadow_config_names_known_backends_and_a_judge_when_sampling(gateway):
    raw = gateway.config.model_dump(mode="json", exclude_none=True)
    profiles = raw["profiles"]
    with pytest.raises(ConfigError, match="shadow.serve: unknown backend 'nope'"):
        validate_config({**raw, "profiles": {**profiles, "polyroute-auto": {
            "shadow": {"serve": "nope"}}}})
    with pytest.raises(ConfigError, match="needs a judge"):
        validate_config({**raw, "profiles": {**profiles, "polyroute-auto": {
            "shadow": {"serve": "alpha", "sample": 0.5}}}})

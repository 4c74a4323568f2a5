"""Reasoning effort as a routing dimension: effort levels are candidates of their own."""

from __future__ import annotations

import pytest
from gateway_world import MATH_PROMPT


def _record(gw, r):
    gw.flush()
    return gw.gateway.store.get_request(r.headers["x-polyroute-request-id"])


EFFORTS = {"gamma": {"efforts": {"low": {"uplift": -0.2},
                                 "high": {"uplift": 0.6, "output_tokens_factor": 3.0}}}}
#: gamma and its effort levels only (gamma alone estimates below 1 on the math prompt).
G = {"polyroute-g": {"lam": 0.0, "models": ["gamma"]},
     "polyroute-g-router": {"lam": 0.0, "models": ["gamma"], "effort": "router"}}


def test_an_effort_level_without_data_borrows_the_model_with_its_uplift(gateway_factory,
                                                                        standins):
    gw = gateway_factory({"profiles": G}, backends=EFFORTS)
    r = gw.chat(MATH_PROMPT, model="polyroute-g")
    assert r.status_code == 200
    assert r.headers["x-polyroute-model"] == "gamma@high"  # +0.6 beats every other estimate
    assert "gamma@high=gamma" in r.headers["x-polyroute-borrowed"]
    sent = standins["gamma"].requests[-1]
    assert sent["reasoning_effort"] == "high" and sent["model"] == "upstream-gamma"
    rec = _record(gw, r)
    est = {c.model: c for c in rec.candidates}
    assert est["gamma@high"].estimated_quality == pytest.approx(
        min(1.0, est["gamma"].estimated_quality + 0.6))
    assert est["gamma@low"].estimated_quality == pytest.approx(
        max(0.0, est["gamma"].estimated_quality - 0.2))
    # three times the answer length at the same prices costs more than gamma itself
    assert est["gamma@high"].estimated_cost > est["gamma"].estimated_cost
    assert "no high-effort outcome data" in rec.explain["estimates"]["gamma@high"]


def test_a_clients_effort_keeps_that_levels_candidates_unless_the_router_decides(
        gateway_factory, standins):
    gw = gateway_factory({"profiles": G}, backends=EFFORTS)
    r = gw.chat(MATH_PROMPT, model="polyroute-g", reasoning_effort="low")
    assert r.headers["x-polyroute-model"] == "gamma@low"
    assert [c.model for c in _record(gw, r).candidates] == ["gamma@low"]
    assert "only those candidates" in _record(gw, r).explain["effort"]
    r = gw.chat(MATH_PROMPT, model="polyroute-g-router", reasoning_effort="low")
    assert r.headers["x-polyroute-model"] == "gamma@high"
    assert standins["gamma"].requests[-1]["reasoning_effort"] == "high"
    assert "lets the router choose" in _record(gw, r).explain["effort"]


def test_a_profile_listing_a_backend_includes_its_effort_levels(gateway_factory):
    gw = gateway_factory({"profiles": {"polyroute-no-alpha": {"models": ["alpha", "gamma"]}}},
                         backends=EFFORTS)
    assert set(gw.config.profiles["polyroute-no-alpha"].models) == {
        "alpha", "gamma", "gamma@low", "gamma@high"}

"""``/metrics`` shows online load balancing: each balanced profile's per-model bias
(``polyroute_balance_bias``) and each backend's load as the balancer sees it
(``polyroute_backend_load``), read when the page is rendered."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from gateway_world import MATH_PROMPT, wait_for

#: γ = 1 moves a bias by a whole quality point per decision, so one step clips it at the
#: balancer's floor (-1) and the next step back at its ceiling (0): exact values to assert.
BALANCED = {"policy": {"kind": "tradeoff", "lam": 0.0,
                       "balance": {"gamma": 1.0, "target": 0.9}}}
PROFILE = "polyroute-balanced"


def _samples(gw, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The series of metric ``name`` on ``/metrics``: sorted label pairs -> value."""
    with gw.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200
    out = {}
    for line in r.text.splitlines():
        m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")))
            out[labels] = float(m.group(2))
    return out


def _bias(samples, profile: str, model: str) -> float:
    return samples[(("model", model), ("profile", profile))]


def _start(gateway_factory):
    return gateway_factory({"profiles": {PROFILE: BALANCED}},
                           backends={"alpha": {"max_concurrency": 2, "queue_timeout": 30}})


def test_overloaded_favourite_gets_a_negative_bias_on_metrics(gateway_factory, standins):
    gw = _start(gateway_factory)
    # Before any balanced decision the biases are the balancer's initial zeros.
    before = _samples(gw, "polyroute_balance_bias")
    assert {_bias(before, PROFILE, m) for m in ("alpha", "beta", "gamma")} == {0.0}
    standins["alpha"].mode = "hold"  # alpha, the router's favourite for math, stays busy
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(gw.chat, MATH_PROMPT, PROFILE) for _ in range(2)]
        wait_for(lambda: standins["alpha"].calls == 2, "alpha to hold two requests")
        loads = _samples(gw, "polyroute_backend_load")
        assert loads[(("backend", "alpha"),)] == 2.0
        assert loads[(("backend", "beta"),)] == 0.0 and loads[(("backend", "gamma"),)] == 0.0
        # alpha's load (2) is over target × max_concurrency (1.8): this decision lowers its bias
        # by γ (to the floor, -1) and the request goes elsewhere; the others are under capacity
        # and stay at the ceiling, 0.
        spilled = gw.chat(MATH_PROMPT, PROFILE)
        assert spilled.status_code == 200
        assert spilled.headers["x-polyroute-model"] in ("beta", "gamma")
        during = _samples(gw, "polyroute_balance_bias")
        assert _bias(during, PROFILE, "alpha") == -1.0
        assert _bias(during, PROFILE, "beta") == 0.0
        assert _bias(during, PROFILE, "gamma") == 0.0
        standins["alpha"].gate.set()
        assert [f.result().headers["x-polyroute-model"] for f in held] == ["alpha", "alpha"]
    # The page reads the balancer when rendered: alpha's load is gone, and the next balanced
    # decision raises its bias back to 0.
    assert _samples(gw, "polyroute_backend_load")[(("backend", "alpha"),)] == 0.0
    assert _bias(_samples(gw, "polyroute_balance_bias"), PROFILE, "alpha") == -1.0
    assert gw.chat(MATH_PROMPT, PROFILE).headers["x-polyroute-model"] == "alpha"
    after = _samples(gw, "polyroute_balance_bias")
    assert _bias(after, PROFILE, "alpha") == 0.0


def test_only_balanced_profiles_export_bias_series(gateway_factory, standins):
    gw = gateway_factory({"profiles": {PROFILE: {**BALANCED, "models": ["alpha", "gamma"]}}})
    for profile in ("polyroute-auto", "polyroute-cheap", PROFILE):
        assert gw.chat(MATH_PROMPT, profile).status_code == 200
    # A per-request λ keeps the profile's balancer: still one series per model, no new profile.
    assert gw.chat(MATH_PROMPT, PROFILE, polyroute={"lam": 0.5}).status_code == 200
    biases = _samples(gw, "polyroute_balance_bias")
    # One series per model the balanced profile may use, none for the plain profiles.
    assert biases == {(("model", "alpha"), ("profile", PROFILE)): 0.0,
                      (("model", "gamma"), ("profile", PROFILE)): 0.0}
    # Every backend's load is exported, balanced or not (idle once the answers are back).
    loads = _samples(gw, "polyroute_backend_load")
    assert loads == {(("backend", b),): 0.0 for b in ("alpha", "beta", "gamma")}


def test_no_balanced_profile_exports_no_bias_series(gateway):
    assert gateway.chat(MATH_PROMPT).status_code == 200
    assert _samples(gateway, "polyroute_balance_bias") == {}
    with gateway.client() as c:
        text = c.get("/metrics").text
    assert "# TYPE polyroute_balance_bias gauge" in text  # declared, but with no series

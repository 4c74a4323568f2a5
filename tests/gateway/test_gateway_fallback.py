"""End to end: fallback to the next candidate, the circuit breaker, and 502/503/504."""

from __future__ import annotations

import json
import time

import pytest
from gateway_world import MATH_PROMPT
from standin import free_socket


def _record(gateway, response):
    gateway.flush()
    return gateway.gateway.store.get_request(response.headers["x-polyroute-request-id"])


@pytest.mark.parametrize("failure", ["500", "503", "429", "drop"])
def test_falls_back_when_the_first_candidate_fails(gateway, standins, failure):
    standins["alpha"].mode = failure
    r = gateway.chat(MATH_PROMPT)
    assert r.status_code == 200
    assert r.headers["x-polyroute-model"] != "alpha"
    assert r.headers["x-polyroute-fallbacks"] == "1"
    rec = _record(gateway, r)
    assert rec.attempts[0].backend == "alpha"
    assert rec.attempts[0].outcome == ("transport_error" if failure == "drop"
                                       else f"http_{failure}")
    assert rec.attempts[1].outcome == "ok" and rec.fallbacks == 1
    assert rec.chosen == rec.attempts[1].backend


def test_falls_back_on_timeout(gateway_factory, standins):
    gw = gateway_factory(backends={"alpha": {"timeout": 0.2}})
    standins["alpha"].mode = "delay:3"
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200 and r.headers["x-polyroute-model"] != "alpha"
    assert _record(gw, r).attempts[0].outcome == "timeout"


def test_falls_back_when_a_backend_refuses_connections(gateway_factory, standin_urls):
    dead = free_socket()  # bound but never listening: connections are refused
    port = dead.getsockname()[1]
    try:
        gw = gateway_factory(urls={**standin_urls, "alpha": f"http://127.0.0.1:{port}"})
        r = gw.chat(MATH_PROMPT)
        assert r.status_code == 200 and r.headers["x-polyroute-model"] != "alpha"
        assert _record(gw, r).attempts[0].outcome == "connect_error"
    finally:
        dead.close()


def test_streaming_falls_back_before_the_first_byte(gateway, standins):
    standins["alpha"].next("500")
    with gateway.client() as c, c.stream(
            "POST", "/v1/chat/completions",
            json={"model": "polyroute-auto", "stream": True,
                  "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        body = b"".join(r.iter_raw())
    assert r.status_code == 200 and r.headers["x-polyroute-model"] != "alpha"
    assert body.endswith(b"data: [DONE]\n\n")


def test_streaming_falls_back_when_headers_arrive_but_no_data(gateway, standins):
    standins["alpha"].next("drop")
    with gateway.client() as c, c.stream(
            "POST", "/v1/chat/completions",
            json={"model": "polyroute-auto", "stream": True,
                  "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        body = b"".join(r.iter_raw())
    assert r.status_code == 200 and r.headers["x-polyroute-fallbacks"] == "1"
    assert body.endswith(b"data: [DONE]\n\n")


def test_client_errors_from_a_backend_are_relayed_not_retried(gateway, standins):
    standins["alpha"].next("400")
    r = gateway.chat(MATH_PROMPT)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "alpha fails with 400"
    assert standins["beta"].calls == 0 and standins["gamma"].calls == 0
    rec = _record(gateway, r)
    assert rec.status == "error" and rec.attempts[0].outcome == "passthrough"


def test_502_when_every_candidate_fails(gateway, standins):
    for s in standins.values():
        s.mode = "500"
    r = gateway.chat(MATH_PROMPT)
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["type"] == "server_error" and err["code"] == "backend_error"
    assert "alpha: http_500" in err["message"]
    rec = _record(gateway, r)
    assert rec.status == "error" and rec.http_status == 502 and rec.chosen is None
    assert [a.backend for a in rec.attempts] == [c.model for c in rec.candidates]
    assert rec.cost == 0


def test_504_when_every_candidate_times_out(gateway_factory, standins):
    gw = gateway_factory(backends={n: {"timeout": 0.2} for n in ("alpha", "beta", "gamma")})
    for s in standins.values():
        s.mode = "delay:2"
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 504 and r.json()["error"]["code"] == "backend_timeout"


def test_failing_backend_cools_down_and_is_skipped(gateway_factory, standins):
    gw = gateway_factory({"breaker": {"failure_threshold": 2, "cooldown": 3600,
                                                      "max_cooldown": 3600}})
    standins["alpha"].mode = "500"
    for _ in range(2):
        assert gw.chat(MATH_PROMPT).headers["x-polyroute-model"] == "gamma"
    assert standins["alpha"].calls == 2
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200
    assert standins["alpha"].calls == 2  # skipped without being called
    rec = _record(gw, r)
    assert rec.attempts[0].backend == "alpha" and rec.attempts[0].outcome == "cooldown"
    with gw.client() as c:
        assert c.get("/healthz").json()["backends"]["alpha"] == "open"
        metrics = c.get("/metrics").text
    assert 'polyroute_backend_cooldown{backend="alpha"} 1.0' in metrics
    # Naming the cooling backend directly: nothing can be tried -> 503 with Retry-After.
    direct = gw.chat(MATH_PROMPT, model="alpha")
    assert direct.status_code == 503 and int(direct.headers["retry-after"]) > 0
    assert direct.json()["error"]["code"] == "backend_unavailable"


def test_a_successful_probe_ends_the_cooldown(gateway_factory, standins):
    gw = gateway_factory({"breaker": {"failure_threshold": 1, "cooldown": 0.05}})
    standins["alpha"].mode = "500"
    assert gw.chat(MATH_PROMPT).headers["x-polyroute-fallbacks"] == "1"
    assert gw.gateway.backends["alpha"].breaker.state == "open"
    standins["alpha"].mode = "ok"
    time.sleep(0.2)  # let the cooldown pass; the next request is the probe
    r = gw.chat(MATH_PROMPT)
    assert r.headers["x-polyroute-model"] == "alpha"
    assert gw.gateway.backends["alpha"].breaker.state == "closed"


def test_fallback_metrics(gateway, standins):
    standins["alpha"].next("500")
    gateway.chat(MATH_PROMPT)
    with gateway.client() as c:
        text = c.get("/metrics").text
    assert 'polyroute_fallbacks_total{backend="alpha"} 1.0' in text
    assert 'polyroute_backend_requests_total{backend="alpha",outcome="http_500"} 1.0' in text
    assert json.dumps("polyroute_routing_decisions_total")[1:-1] in text

"""End to end: authentication, malformed requests, limits, and the small endpoints."""

from __future__ import annotations

import pytest
from gateway_world import KEY, MATH_PROMPT, POETRY_PROMPT

from polyroute.gateway import hash_key


def _error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic abc", "Bearer"])
def test_missing_or_invalid_key_is_401(gateway, standins, header):
    with gateway.client(key=None) as c:
        r = c.post("/v1/chat/completions",
                   headers={"authorization": header} if header else {},
                   json={"model": "polyroute-auto",
                         "messages": [{"role": "user", "content": "hi"}]})
    err = _error(r, 401)
    assert err["code"] == "invalid_api_key"
    assert all(s.calls == 0 for s in standins.values())
    # Counted in metrics, never stored (the outside probe: 1,000 wrong keys wrote 1,000 rows).
    gateway.flush()
    assert gateway.gateway.store.recent_requests() == []
    assert "x-polyroute-request-id" not in r.headers
    assert gateway.gateway.metrics.errors.labels("auth")._value.get() == 1


def test_models_and_metrics_need_a_key_but_health_does_not(gateway):
    with gateway.client(key=None) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/metrics").status_code == 401  # details in test_metrics_auth.py


def test_auth_can_be_turned_off(gateway_factory):
    gw = gateway_factory({"server": {"require_auth": False}, "keys": []})
    assert gw.chat(MATH_PROMPT, key=None).status_code == 200


@pytest.mark.parametrize("body, param", [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b"", None),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
    (b'{"model": "polyroute-auto"}', "messages"),
    (b'{"model": "polyroute-auto", "messages": []}', "messages"),
    (b'{"model": "polyroute-auto", "messages": ["hi"]}', "messages[0]"),
    (b'{"model": "polyroute-auto", "messages": [{"role": "user"}], "stream": "yes"}', "stream"),
    (b'{"model": "no-such-profile", "messages": [{"role": "user"}]}', "model"),
    (b'{"model": "polyroute-auto", "messages": [{"role": "user"}], "polyroute": {"lam": -1}}',
     "polyroute"),
    (b'{"model": "polyroute-auto", "messages": [{"role": "user"}], "polyroute": {"floor": 2}}',
     "polyroute"),
    (b'{"model": "polyroute-auto", "messages": [{"role": "user"}], '
     b'"polyroute": {"lam": 1, "floor": 0.5}}', "polyroute"),
    (b'{"model": "polyroute-auto", "messages": [{"role": "user"}], "polyroute": {"k": 1}}',
     "polyroute"),
])
def test_malformed_bodies_are_400(gateway, standins, body, param):
    with gateway.client() as c:
        r = c.post("/v1/chat/completions", content=body,
                   headers={"content-type": "application/json"})
    err = _error(r, 400)
    assert err["type"] == "invalid_request_error" and err["param"] == param
    assert all(s.calls == 0 for s in standins.values())


def test_bad_preference_header_is_400(gateway):
    with gateway.client() as c:
        r = c.post("/v1/chat/completions", headers={"x-polyroute-floor": "high"},
                   json={"model": "polyroute-auto", "messages": [{"role": "user"}]})
    assert "x-polyroute-floor" in _error(r, 400)["message"]


def test_unknown_model_lists_what_exists(gateway):
    err = _error(gateway.chat("hi", model="gpt-17"), 400)
    assert err["code"] == "model_not_found"
    assert "polyroute-cheap" in err["message"] and "gamma" in err["message"]


def test_body_too_large_is_413(gateway_factory, standins):
    gw = gateway_factory({"server": {"max_body_bytes": 2048}})
    err = _error(gw.chat("x" * 5000), 413)
    assert err["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit is enforced while reading
        yield b'{"model": "polyroute-auto", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}]}'

    with gw.client() as c:
        r = c.post("/v1/chat/completions", content=chunked(),
                   headers={"content-type": "application/json"})
    _error(r, 413)
    assert all(s.calls == 0 for s in standins.values())


def test_unknown_route_and_method_use_the_error_shape(gateway):
    with gateway.client() as c:
        _error(c.get("/v1/nothing"), 404)
        _error(c.get("/v1/chat/completions"), 405)


def test_spend_limit_is_429_once_reached(gateway_factory, standins, tmp_path):
    gw = gateway_factory({"keys": [{"id": "one", "sha256": hash_key(KEY),
                                    "spend_limit": 1e-6, "spend_period": "day"}]})
    assert gw.chat(MATH_PROMPT).status_code == 200  # costs $0.00009 > the $0.000001 limit
    err = _error(gw.chat(MATH_PROMPT), 429)
    assert err["code"] == "spend_limit_exceeded" and err["type"] == "insufficient_quota"
    assert standins["alpha"].calls == 1


def test_spend_limit_survives_a_restart(gateway_factory, standins):
    keys = {"keys": [{"id": "one", "sha256": hash_key(KEY), "spend_limit": 1e-6}]}
    first = gateway_factory(keys)
    assert first.chat(MATH_PROMPT).status_code == 200
    first.server.stop()
    second = gateway_factory(keys)  # same store file: the spend is read back at start-up
    _error(second.chat(MATH_PROMPT), 429)


def test_metrics_count_requests_decisions_and_spend(gateway):
    gateway.chat(MATH_PROMPT)
    gateway.chat(POETRY_PROMPT)
    gateway.chat("hi", key="bad")
    with gateway.client() as c:
        r = c.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'polyroute_requests_total{route="polyroute-auto",status="200"} 2.0' in text
    assert 'polyroute_requests_total{route="invalid",status="401"} 1.0' in text
    assert 'polyroute_routing_decisions_total{model="alpha",route="polyroute-auto"} 1.0' in text
    assert 'polyroute_routing_decisions_total{model="beta",route="polyroute-auto"} 1.0' in text
    assert 'polyroute_spend_dollars_total{backend="alpha"}' in text
    assert 'polyroute_backend_latency_seconds_bucket{backend="beta"' in text
    assert "polyroute_decision_seconds_count 2.0" in text
    assert 'polyroute_errors_total{kind="auth"} 1.0' in text

"""End to end: no backend key or upstream body reaches a client; logs and the store stay clean."""

from __future__ import annotations

import logging

from gateway_world import MATH_PROMPT

KEYS = {"alpha": "sk-alpha-SECRET-0123456789abcdef", "beta": "beta-plain-secret-key-42",
        "gamma": "gamma-Zm9vYmFyYmF6cXV4cXV1eA"}


def _with_keys(gateway_factory):
    return gateway_factory(backends={n: {"api_key_env": f"{n.upper()}_KEY"} for n in KEYS},
                           env={f"{n.upper()}_KEY": k for n, k in KEYS.items()})


def test_a_502_carries_no_backend_key_nor_upstream_body(gateway_factory, standins):
    gw = _with_keys(gateway_factory)
    for s in standins.values():
        s.mode = "echo_key"
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 502
    # The stand-ins did get the keys (and echoed them) ...
    assert {s.headers[-1]["authorization"] for s in standins.values()} == \
        {f"Bearer {k}" for k in KEYS.values()}
    message = r.json()["error"]["message"]
    assert "alpha: http_500" in message and "upstream server error" in message
    assert "invalid request" not in message  # ... no upstream body, only a generic reason
    for key in KEYS.values():
        assert key not in r.text
    gw.flush()
    rec = gw.gateway.store.get_request(r.headers["x-polyroute-request-id"])
    assert len(rec.attempts) == 3
    for attempt in rec.attempts:
        assert attempt.error and "invalid request" in attempt.error  # an excerpt is kept
        assert "Bearer [redacted]" in attempt.error
        for key in KEYS.values():
            assert key not in attempt.error
    assert all(key not in (rec.error or "") for key in KEYS.values())


def test_client_reasons_are_generic_per_backend(gateway_factory, standins):
    gw = gateway_factory(backends={n: {"timeout": 0.3} for n in KEYS})
    standins["alpha"].mode, standins["beta"].mode, standins["gamma"].mode = \
        "429", "delay:2", "401"
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 502
    message = r.json()["error"]["message"]
    assert "rate-limited" in message and "timed out" in message and "unauthorized" in message
    assert "fails with" not in message  # the stand-ins' own error text stays upstream


def test_httpx_does_not_log_requests_at_info(gateway, standins, caplog):
    from polyroute.cli.serve import configure_logging

    saved = {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    try:
        configure_logging("info")
        caplog.set_level(logging.INFO)
        assert gateway.chat(MATH_PROMPT).status_code == 200
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert standins["alpha"].calls == 1  # a request went upstream, unlogged


def test_a_relayed_client_error_has_the_key_removed(gateway_factory, standins):
    gw = _with_keys(gateway_factory)
    standins["alpha"].mode = "echo_key:400"
    r = gw.chat(MATH_PROMPT, model="alpha")
    assert r.status_code == 400 and "invalid request with" in r.json()["error"]["message"]
    assert KEYS["alpha"] not in r.text

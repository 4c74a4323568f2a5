"""End to end: a stream (or answer) counts as a success only when it is complete and well formed.

A broken stream whose bytes have not reached the client yet falls back to the next candidate;
one that breaks after bytes went out ends with an error event, is recorded as an upstream error
and counts against the backend's circuit breaker.
"""

from __future__ import annotations

import json

import pytest
from gateway_world import MATH_PROMPT, wait_for


def _events(raw: bytes) -> list[str]:
    return [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e.strip()]


def _stream(gw, model: str = "polyroute-auto"):
    with gw.client() as c, c.stream(
            "POST", "/v1/chat/completions",
            json={"model": model, "stream": True,
                  "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        body = b"".join(r.iter_raw())
    return r, body


def _record(gw, response):
    def final():
        gw.flush()
        rec = gw.gateway.store.get_request(response.headers["x-polyroute-request-id"])
        return rec if rec is not None and rec.status != "in_progress" else None
    wait_for(lambda: final() is not None, "the request's record")
    return final()


def _metric(gw, line_start: str) -> float:
    with gw.client() as c:
        text = c.get("/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(line_start)]
    return sum(values)


@pytest.mark.parametrize("mode", ["truncate", "garbage_mid"])
def test_a_broken_stream_after_commit_is_an_upstream_error(gateway, standins, mode):
    standins["alpha"].mode = mode
    r, body = _stream(gateway)
    assert r.status_code == 200 and r.headers["x-polyroute-model"] == "alpha"
    events = _events(body)
    assert json.loads(events[-1])["error"]["code"] == "backend_stream_error"
    assert "[DONE]" not in events
    for e in events[:-1]:  # what was forwarded is well formed; the bad event is not
        assert isinstance(json.loads(e)["choices"], list)
    rec = _record(gateway, r)
    assert rec.status == "error" and rec.chosen == "alpha"
    assert rec.attempts[-1].backend == "alpha" and rec.attempts[-1].outcome == "stream_error"
    assert rec.cost > 0  # charged as far as known (here: the estimate)
    assert gateway.gateway.backends["alpha"].breaker.failures == 1
    assert _metric(gateway, 'polyroute_errors_total{kind="backend_stream_error"}') == 1


def test_truncated_streams_open_the_breaker(gateway_factory, standins):
    gw = gateway_factory({"breaker": {"failure_threshold": 2, "cooldown": 3600,
                                      "max_cooldown": 3600}})
    standins["alpha"].mode = "truncate"
    for _ in range(2):
        r, _ = _stream(gw)
        assert r.headers["x-polyroute-model"] == "alpha"
        _record(gw, r)
    assert gw.gateway.backends["alpha"].breaker.state == "open"
    r, body = _stream(gw)
    assert r.headers["x-polyroute-model"] != "alpha" and body.endswith(b"data: [DONE]\n\n")


def test_a_complete_stream_is_a_success_for_the_breaker(gateway, standins):
    breaker = gateway.gateway.backends["alpha"].breaker
    breaker.record_failure()
    r, body = _stream(gateway)
    assert body.endswith(b"data: [DONE]\n\n") and _record(gateway, r).status == "ok"
    assert breaker.failures == 0


@pytest.mark.parametrize("mode", ["garbage", "nochoices", "choices:null", "choices:5",
                                  "redirect:302"])
def test_a_stream_broken_from_the_start_falls_back(gateway, standins, mode):
    standins["alpha"].mode = mode
    r, body = _stream(gateway)
    assert r.status_code == 200 and r.headers["x-polyroute-fallbacks"] == "1"
    assert r.headers["x-polyroute-model"] != "alpha"
    assert body.endswith(b"data: [DONE]\n\n")
    rec = _record(gateway, r)
    assert rec.status == "ok"
    expected = "http_302" if mode.startswith("redirect") else "bad_response"
    assert rec.attempts[0].backend == "alpha" and rec.attempts[0].outcome == expected


def test_a_stream_ending_before_any_complete_event_falls_back(gateway, standins):
    standins["alpha"].mode = "truncate"
    standins["alpha"].chunks = 0  # headers, then the end: no event at all
    r, body = _stream(gateway)
    assert r.headers["x-polyroute-fallbacks"] == "1" and body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("mode", ["nochoices", "choices:null", "choices:5", "choices:{}"])
def test_an_answer_that_is_not_a_chat_completion_falls_back(gateway, standins, mode):
    standins["alpha"].mode = mode
    r = gateway.chat(MATH_PROMPT)
    assert r.status_code == 200 and r.headers["x-polyroute-model"] != "alpha"
    assert isinstance(r.json()["choices"], list)
    assert _record(gateway, r).attempts[0].outcome == "bad_response"


@pytest.mark.parametrize("status", ["301", "302", "307"])
def test_redirects_are_upstream_failures_not_relayed(gateway, standins, status):
    standins["alpha"].mode = f"redirect:{status}"
    r = gateway.chat(MATH_PROMPT)
    assert r.status_code == 200 and r.headers["x-polyroute-model"] != "alpha"
    assert "location" not in r.headers
    assert _record(gateway, r).attempts[0].outcome == f"http_{status}"


def test_redirect_from_every_backend_is_a_502(gateway, standins):
    for s in standins.values():
        s.mode = "redirect:302"
    r = gateway.chat(MATH_PROMPT)
    assert r.status_code == 502 and "location" not in r.headers


def test_an_event_over_the_cap_ends_the_stream_with_an_error(gateway_factory, standins):
    gw = gateway_factory(backends={"alpha": {"max_event_bytes": 100_000}})
    standins["alpha"].mode = "huge_event:2000000"
    r, body = _stream(gw)
    assert r.headers["x-polyroute-model"] == "alpha"
    events = _events(body)
    error = json.loads(events[-1])["error"]
    assert error["code"] == "backend_stream_error" and "max_event_bytes" in error["message"]
    assert len(body) < 100_000  # the oversized event was never forwarded
    rec = _record(gw, r)
    assert rec.status == "error" and rec.attempts[-1].outcome == "stream_error"
    assert gw.gateway.backends["alpha"].breaker.failures == 1


def test_an_answer_over_the_cap_falls_back(gateway_factory, standins):
    gw = gateway_factory(backends={"alpha": {"max_answer_bytes": 100_000}})
    standins["alpha"].mode = "huge_event:2000000"
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200 and r.headers["x-polyroute-model"] != "alpha"
    assert _record(gw, r).attempts[0].outcome == "too_large"


def test_comment_lines_do_not_keep_a_stream_alive(gateway_factory, standins):
    gw = gateway_factory(backends={"alpha": {"timeout": 0.5}})
    standins["alpha"].mode = "comments_mid"
    r, body = _stream(gw)
    assert r.headers["x-polyroute-model"] == "alpha"
    error = json.loads(_events(body)[-1])["error"]
    assert error["code"] == "backend_stream_error" and "timeout" in error["message"]
    rec = _record(gw, r)
    assert rec.status == "error" and "timeout" in rec.error
    assert gw.gateway.backends["alpha"].breaker.failures == 1


def test_a_stream_of_only_comments_falls_back_at_its_timeout(gateway_factory, standins):
    gw = gateway_factory(backends={"alpha": {"timeout": 0.5}})
    standins["alpha"].mode = "comments"
    r, body = _stream(gw)
    assert r.headers["x-polyroute-model"] != "alpha" and body.endswith(b"data: [DONE]\n\n")
    assert _record(gw, r).attempts[0].outcome == "timeout"

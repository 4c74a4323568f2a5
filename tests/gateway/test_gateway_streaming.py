"""End to end: server-sent events pass through in order and complete; endings are recorded."""

from __future__ import annotations

import json
import time

import httpx
from gateway_world import MATH_PROMPT, POETRY_PROMPT


def _events(raw: bytes) -> list[str]:
    return [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e.strip()]


def _stream(gateway, text: str, **body) -> tuple[httpx.Response, list[bytes]]:
    with gateway.client() as c, c.stream(
            "POST", "/v1/chat/completions",
            json={"model": "polyroute-auto", "stream": True,
                  "messages": [{"role": "user", "content": text}], **body}) as r:
        chunks = list(r.iter_raw())
    return r, chunks


def _wait_for_record(gateway, request_id: str, deadline_s: float = 30.0):
    """Poll until the request's final record is committed (the gateway writes it when the
    stream ends, which the server may notice a little after the client has left)."""
    end = time.monotonic() + deadline_s
    while True:
        gateway.flush()
        rec = gateway.gateway.store.get_request(request_id)
        if rec is not None and rec.status != "in_progress":
            return rec
        assert time.monotonic() < end, "the request was never recorded"
        time.sleep(0.05)


def test_stream_arrives_in_order_and_complete(gateway, standins):
    standins["beta"].chunks = 12
    r, chunks = _stream(gateway, POETRY_PROMPT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-polyroute-model"] == "beta"
    events = _events(b"".join(chunks))
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads)
    assert text == "".join(f"beta answers {i}|" for i in range(12))
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    # The usage chunk the gateway asked for on its own is not shown to the client ...
    assert all(p["choices"] for p in payloads)
    # ... but its tokens are charged.
    rec = _wait_for_record(gateway, r.headers["x-polyroute-request-id"])
    assert rec.status == "ok" and rec.chosen == "beta"
    assert rec.prompt_tokens == 10 and rec.completion_tokens == 12
    assert standins["beta"].requests[-1]["stream_options"] == {"include_usage": True}


def test_stream_is_relayed_event_by_event(gateway, standins):
    """Each upstream event is forwarded as it comes, not gathered into one body."""
    standins["alpha"].chunks, standins["alpha"].chunk_gap = 6, 0.02
    _, chunks = _stream(gateway, MATH_PROMPT)
    assert len(chunks) >= 6


def test_client_asking_for_usage_gets_the_usage_chunk(gateway, standins):
    r, chunks = _stream(gateway, MATH_PROMPT, stream_options={"include_usage": True})
    payloads = [json.loads(e) for e in _events(b"".join(chunks))[:-1]]
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] == 5


def test_backend_dropping_mid_stream_ends_with_an_error_event(gateway, standins):
    standins["alpha"].mode = "drop_mid"
    r, chunks = _stream(gateway, MATH_PROMPT)
    assert r.status_code == 200  # the headers had gone out before the backend failed
    events = _events(b"".join(chunks))
    assert json.loads(events[-1])["error"]["code"] == "backend_stream_error"
    rec = _wait_for_record(gateway, r.headers["x-polyroute-request-id"])
    assert rec.status == "error" and "mid-stream" in rec.error
    # No fallback once bytes reached the client.
    assert [a.backend for a in rec.attempts] == ["alpha"]
    assert standins["beta"].calls == 0


def test_client_leaving_mid_stream_is_recorded(gateway, standins):
    standins["alpha"].mode = "stall_mid"
    with gateway.client() as c, c.stream(
            "POST", "/v1/chat/completions",
            json={"model": "polyroute-auto", "stream": True,
                  "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        request_id = r.headers["x-polyroute-request-id"]
        first = next(r.iter_raw())
        assert first.startswith(b"data: ")
    rec = _wait_for_record(gateway, request_id)
    assert rec.status == "client_closed" and rec.chosen == "alpha"
    assert gateway.gateway.backends["alpha"].in_flight == 0  # the slot was given back

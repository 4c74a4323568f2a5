"""Streamed requests to cascade and top-k profiles: the multi-call runs as for a non-streamed
request, then its answer is replayed as one buffered SSE stream (``completion_to_sse``)."""

from __future__ import annotations

import json

import pytest
from gateway_world import MATH_PROMPT, POETRY_PROMPT, MeanRouter, make_outcomes
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from polyroute import Pipeline
from polyroute.gateway.streaming import completion_to_sse

REFUSAL = "I'm sorry, but I can't help with that."
#: As in test_gateway_policies: gamma's normal answers pass (0.3 × 1), a refusal escalates.
CASCADE = {"policy": {"kind": "cascade", "threshold": 0.2, "lam": 0.1, "scorer": "heuristic"}}
TOPK = {"policy": {"kind": "topk", "lam": 0.0, "max_k": 2, "aggregator": "gamma"}}
#: The stand-ins' usage for one non-streamed answer.
USAGE = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}


def _payloads(raw: bytes) -> list[dict]:
    """The JSON events of an SSE body, checking that it ends with exactly one ``[DONE]``."""
    events = [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e.strip()]
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    return [json.loads(e) for e in events[:-1]]


def _text(payloads: list[dict]) -> str:
    return "".join(c["delta"].get("content") or "" for p in payloads for c in p["choices"])


def _record(gw, response):
    gw.flush()
    return gw.gateway.store.get_request(response.headers["x-polyroute-request-id"])


def _cascade_gateway(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE}})
    standins["gamma"].reply = REFUSAL
    return gw


# -- cascade -------------------------------------------------------------------------------------
def test_streamed_cascade_escalates_and_streams_the_accepted_answer(gateway_factory, standins):
    gw = _cascade_gateway(gateway_factory, standins)
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-polyroute-cascade"] == "gamma>alpha"
    assert r.headers["x-polyroute-model"] == "alpha"
    payloads = _payloads(r.content)
    assert _text(payloads) == "alpha answers"  # the escalated step's answer, not gamma's refusal
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert {p["id"] for p in payloads} == {"chatcmpl-alpha"}
    assert {p["model"] for p in payloads} == {"upstream-alpha"}
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    # Every step was called non-streamed: the client's stream flags do not reach the backends.
    for name in ("gamma", "alpha"):
        [sent] = standins[name].requests
        assert "stream" not in sent and "stream_options" not in sent


def test_streamed_cascade_is_recorded_and_charged_like_a_plain_one(gateway_factory, standins):
    gw = _cascade_gateway(gateway_factory, standins)
    plain = gw.chat(MATH_PROMPT, model="polyroute-cascade")
    streamed = gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=True)
    assert plain.status_code == streamed.status_code == 200
    for header in ("x-polyroute-cascade", "x-polyroute-model", "x-polyroute-fallbacks",
                   "x-polyroute-profile"):
        assert streamed.headers[header] == plain.headers[header]
    assert _text(_payloads(streamed.content)) == plain.json()["choices"][0]["message"]["content"]
    a, b = _record(gw, plain), _record(gw, streamed)
    assert (a.stream, b.stream) == (False, True)
    assert b.status == "ok" and b.http_status == 200 and b.chosen == "alpha"
    assert [(x.backend, x.outcome) for x in b.attempts] == [("gamma", "ok"), ("alpha", "ok")]
    assert [(x.backend, x.outcome) for x in a.attempts] == [("gamma", "ok"), ("alpha", "ok")]
    prices = {c.name: c for c in gw.config.backends}
    expected = sum((10 * prices[m].input_price_per_mtok + 20 * prices[m].output_price_per_mtok)
                   / 1e6 for m in ("gamma", "alpha"))
    assert b.cost == pytest.approx(expected) and a.cost == pytest.approx(expected)
    assert (b.prompt_tokens, b.completion_tokens) == (20, 40)
    assert (b.profile, b.fallbacks, b.key_id) == (a.profile, a.fallbacks, a.key_id)
    assert standins["gamma"].calls == 2 and standins["alpha"].calls == 2


def test_streamed_cascade_sends_usage_only_when_asked(gateway_factory, standins):
    gw = _cascade_gateway(gateway_factory, standins)
    asked = _payloads(gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=True,
                              stream_options={"include_usage": True}).content)
    # The returned answer's own usage, as in the non-streamed body; last before [DONE].
    assert asked[-1]["choices"] == [] and asked[-1]["usage"] == USAGE
    assert [p for p in asked if "usage" in p] == [asked[-1]]
    assert _text(asked) == "alpha answers"
    not_asked = _payloads(gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=True).content)
    assert all("usage" not in p and p["choices"] for p in not_asked)
    assert _text(not_asked) == "alpha answers"


def test_streamed_cascade_relays_a_client_error_as_json(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE}})
    standins["gamma"].mode = "400"
    r = gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=True)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["message"] == "gamma fails with 400"
    assert r.headers["x-polyroute-cascade"] == "gamma"
    assert standins["alpha"].calls == 0
    rec = _record(gw, r)
    assert rec.status == "error" and rec.http_status == 400 and "refused" in rec.error


# -- top-k ---------------------------------------------------------------------------------------
def test_streamed_topk_streams_the_merged_answer(gateway_factory, standins):
    pipeline = Pipeline(MeanRouter(), featurizer="tfidf", cache=False).fit(make_outcomes())
    gw = gateway_factory({"profiles": {"polyroute-set": TOPK}}, pipeline=pipeline)
    standins["gamma"].reply = "merged answer"
    r = gw.chat(POETRY_PROMPT, model="polyroute-set", stream=True,
                stream_options={"include_usage": True})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-polyroute-set"] == "alpha,beta"
    assert r.headers["x-polyroute-model"] == "gamma"
    payloads = _payloads(r.content)
    assert _text(payloads) == "merged answer"
    assert payloads[-1]["usage"] == USAGE
    assert standins["alpha"].calls == 1 and standins["beta"].calls == 1
    [merge] = standins["gamma"].requests
    assert "stream" not in merge and "stream_options" not in merge
    assert "alpha answers" in merge["messages"][-1]["content"]
    rec = _record(gw, r)
    assert rec.stream and rec.status == "ok"
    assert sorted(a.backend for a in rec.attempts) == ["alpha", "beta", "gamma"]
    assert rec.prompt_tokens == 30 and rec.completion_tokens == 60 and rec.cost > 0


# -- the conversion ------------------------------------------------------------------------------
def _completion(message: dict, finish_reason: str = "stop", **extra) -> dict:
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 1700000000,
            "model": "m-1", "choices": [{"index": 0, "message": message,
                                         "finish_reason": finish_reason}], **extra}


def _rebuilt(sse: bytes):
    """The completion the official client's stream accumulator rebuilds from ``sse`` (each event
    validated as a ``ChatCompletionChunk`` on the way)."""
    state = ChatCompletionStreamState()
    for payload in _payloads(sse):
        state.handle_chunk(ChatCompletionChunk.model_validate(payload))
    return state.get_final_completion()


def test_completion_to_sse_round_trips_a_text_answer():
    completion = _completion({"role": "assistant", "content": "The answer is 3."},
                             usage=USAGE, system_fingerprint="fp_1")
    sse = completion_to_sse(completion, include_usage=True)
    payloads = _payloads(sse)
    assert [p["choices"] for p in payloads] == [
        [{"index": 0, "delta": {"role": "assistant", "content": "The answer is 3."},
          "finish_reason": None}],
        [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        []]
    assert payloads[-1]["usage"] == USAGE
    for p in payloads:
        assert (p["id"], p["created"], p["model"], p["object"], p["system_fingerprint"]) == (
            "chatcmpl-x", 1700000000, "m-1", "chat.completion.chunk", "fp_1")
    rebuilt = _rebuilt(sse)
    assert rebuilt.choices[0].message.content == "The answer is 3."
    assert rebuilt.usage is not None and rebuilt.usage.total_tokens == 30
    assert "usage" not in "".join(json.dumps(p) for p in _payloads(
        completion_to_sse(completion, include_usage=False)))


def test_completion_to_sse_carries_tool_calls():
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
             {"id": "call_2", "type": "function",
              "function": {"name": "mul", "arguments": '{"a": 3}'}}]
    completion = _completion({"role": "assistant", "content": None, "tool_calls": calls},
                             finish_reason="tool_calls")
    payloads = _payloads(completion_to_sse(completion, include_usage=False))
    delta = payloads[0]["choices"][0]["delta"]
    assert delta["content"] is None
    assert delta["tool_calls"] == [{"index": 0, **calls[0]}, {"index": 1, **calls[1]}]
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"
    rebuilt = _rebuilt(completion_to_sse(completion, include_usage=False))
    got = [(c.id, c.function.name, c.function.arguments)
           for c in rebuilt.choices[0].message.tool_calls]
    assert got == [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls]
    assert rebuilt.choices[0].finish_reason == "tool_calls"


def test_completion_to_sse_with_empty_content_and_no_usage():
    completion = _completion({"role": "assistant", "content": ""}, finish_reason="length")
    payloads = _payloads(completion_to_sse(completion, include_usage=True))
    # No usage reported: no usage chunk, even though the client asked for one.
    assert all(p["choices"] and "usage" not in p for p in payloads)
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"][0]["finish_reason"] == "length"
    assert _text(payloads) == ""


def test_completion_to_sse_streams_every_choice():
    completion = _completion({"role": "assistant", "content": "one"})
    completion["choices"].append({"index": 1, "message": {"role": "assistant", "content": "two"},
                                  "finish_reason": "stop"})
    rebuilt = _rebuilt(completion_to_sse(completion, include_usage=False))
    assert [c.message.content for c in rebuilt.choices] == ["one", "two"]

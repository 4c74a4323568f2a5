"""Hostile or malformed input is a clear OpenAI-shaped 400 before any upstream call, never a 500,
and every request that got past authentication still ends in exactly one finished record."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from gateway_world import KEY, MATH_PROMPT
from standin import ServerThread

from polyroute.gateway import hash_key
from polyroute.gateway.errors import APIError

USER = {"role": "user", "content": MATH_PROMPT}


def _body(**fields: Any) -> dict[str, Any]:
    return {"model": "polyroute-auto", "messages": [USER], **fields}


def _post(gw, body: dict[str, Any] | bytes, path: str = "/v1/chat/completions"):
    """POST ``body`` as given: a dict is dumped with ASCII escapes (so a lone surrogate travels
    as ``\\ud800``, as a client would send it) and NaN literals allowed."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with gw.client() as c:
        return c.post(path, content=raw, headers={"content-type": "application/json"})


def _error(r, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and isinstance(err["type"], str)
    return err


def _finished_row(gw, r):
    gw.flush()
    row = gw.gateway.store.get_request(r.headers["x-polyroute-request-id"])
    assert row is not None, "the request left no row"
    assert row.status != "in_progress"
    return row


def _refused(gw, standins, body, param: str | None, status: int = 400) -> dict[str, Any]:
    r = _post(gw, body)
    err = _error(r, status)
    assert err["param"] == param, err
    assert all(s.calls == 0 for s in standins.values()), "an upstream was called"
    row = _finished_row(gw, r)
    assert row.status == "error" and row.http_status == status and row.key_id == "one"
    return err


# -- content parts (features/text.py used to raise on them) --------------------------------------
@pytest.mark.parametrize("text", [5, None, {"a": 1}, ["x"]])
def test_text_part_whose_text_is_not_a_string_is_400(gateway, standins, text):
    body = _body(messages=[{"role": "user", "content": [{"type": "text", "text": text}]}])
    err = _refused(gateway, standins, body, "messages[0].content[0].text")
    assert err["code"] == "invalid_type"


@pytest.mark.parametrize("content, param", [
    ({"text": "hi"}, "messages[0].content"),
    (7, "messages[0].content"),
    (None, "messages[0].content"),
    (True, "messages[0].content"),
    (["hi"], "messages[0].content[0]"),
    ([{"text": "hi"}], "messages[0].content[0].type"),
])
def test_content_of_the_wrong_type_is_400(gateway, standins, content, param):
    _refused(gateway, standins, _body(messages=[{"role": "user", "content": content}]), param)


def test_null_content_is_fine_for_an_assistant_tool_call(gateway, standins):
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = _body(messages=[USER, {"role": "assistant", "content": None, "tool_calls": [call]},
                           {"role": "tool", "tool_call_id": "c1", "content": "42"}, USER])
    r = _post(gateway, body)
    assert r.status_code == 200, r.text
    err = _error(_post(gateway, _body(messages=[USER, {"role": "assistant", "content": None}])))
    assert err["param"] == "messages[1].content"


# -- lone surrogates -----------------------------------------------------------------------------
@pytest.mark.parametrize("body, param", [
    (_body(messages=[{"role": "user", "content": "hi \ud800"}]), "messages[0].content"),
    (_body(model="polyroute-auto\ud800"), "model"),
    (_body(model="\udfff"), "model"),
    (_body(user="\ud800"), "user"),
    (_body(messages=[{"role": "user", "content": [{"type": "text", "text": "\ud800"}]}]),
     "messages[0].content[0].text"),
    (_body(metadata={"\ud800": "x"}), "metadata"),
    (_body(polyroute={"lam": "\ud800"}), "polyroute.lam"),
])
def test_a_lone_surrogate_anywhere_is_400_and_recorded(gateway, standins, body, param):
    err = _refused(gateway, standins, body, param)
    assert "surrogate" in err["message"]


def test_a_surrogate_in_messages_leaves_no_request_in_progress(gateway, standins):
    r = _post(gateway, _body(messages=[{"role": "user", "content": "\ud83d"}]))
    _error(r)
    row = _finished_row(gateway, r)
    assert row.status == "error" and row.http_status == 400
    assert gateway.gateway.store.failed_writes == 0


# -- nesting -------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [100, 1000, 100_000])
def test_deep_nesting_is_400(gateway, standins, depth):
    raw = (b'{"model": "polyroute-auto", "messages": [{"role": "user", "content": "hi"}], '
           b'"metadata": ' + b"[" * depth + b"]" * depth + b"}")
    err = _refused(gateway, standins, raw, None)
    assert "nested deeper than" in err["message"]


# -- numbers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "n"])
def test_huge_integers_are_400_for_a_key_with_a_spend_limit(gateway_factory, standins, field):
    gw = gateway_factory({"keys": [{"id": "one", "sha256": hash_key(KEY), "spend_limit": 10.0,
                                    "spend_period": "day"}]})
    raw = json.dumps(_body()).encode()[:-1] + f', "{field}": {"9" * 400}}}'.encode()
    err = _refused(gw, standins, raw, field)
    assert err["code"] == "integer_above_max_value"
    assert gw.gateway.spend.reserved("one") == 0.0
    assert gw.chat(MATH_PROMPT, max_tokens=100).status_code == 200


@pytest.mark.parametrize("fields, param, code", [
    ({"temperature": "0.5"}, "temperature", "invalid_type"),
    ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ({"temperature": True}, "temperature", "invalid_type"),
    ({"top_p": -0.1}, "top_p", "decimal_below_min_value"),
    ({"n": 1000}, "n", "integer_above_max_value"),
    ({"n": 0}, "n", "integer_below_min_value"),
    ({"n": 2.5}, "n", "invalid_type"),
    ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ({"max_tokens": -5}, "max_tokens", "integer_below_min_value"),
    ({"max_completion_tokens": "many"}, "max_completion_tokens", "invalid_type"),
    ({"presence_penalty": 3}, "presence_penalty", "decimal_above_max_value"),
    ({"frequency_penalty": -2.5}, "frequency_penalty", "decimal_below_min_value"),
    ({"seed": 2 ** 70}, "seed", "integer_above_max_value"),
    ({"tools": {"type": "function"}}, "tools", "invalid_type"),
    ({"tools": ["f"]}, "tools[0]", "invalid_type"),
    ({"tool_choice": 3}, "tool_choice", "invalid_type"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
    ({"stop": [1]}, "stop[0]", "invalid_type"),
    ({"stream": "yes"}, "stream", "invalid_type"),
    ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage",
     "invalid_type"),
])
def test_openai_fields_are_checked_before_any_upstream_call(gateway, standins, fields, param,
                                                            code):
    err = _refused(gateway, standins, _body(**fields), param)
    assert err["code"] == code and param in err["message"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_400(gateway, standins, literal):
    raw = json.dumps(_body()).encode()[:-1] + b', "temperature": ' + literal + b"}"
    _refused(gateway, standins, raw, "temperature" if literal == b"1e999" else None)


def test_valid_fields_and_unknown_ones_still_reach_the_backend(gateway, standins):
    body = _body(temperature=None, top_p=1, n=1, max_tokens=10 ** 7, stop="END", seed=-3,
                 tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="auto",
                 brand_new_openai_param={"x": [1, 2]}, stream_options=None)
    r = _post(gateway, body)
    assert r.status_code == 200, r.text
    [sent] = [s.requests[0] for s in standins.values() if s.requests]
    assert sent["brand_new_openai_param"] == {"x": [1, 2]} and sent["max_tokens"] == 10 ** 7


def test_the_validator_table_names_its_limits():
    from polyroute.gateway.validate import MAX_N, MAX_OUTPUT_TOKENS, validate_chat

    validate_chat(_body(n=MAX_N, max_tokens=MAX_OUTPUT_TOKENS))
    for fields in ({"n": MAX_N + 1}, {"max_tokens": MAX_OUTPUT_TOKENS + 1}):
        with pytest.raises(APIError) as exc:
            validate_chat(_body(**fields))
        assert exc.value.status == 400


# -- a cascade whose upstream answers nonsense --------------------------------------------------
class _Odd:
    """A backend whose every answer is a 200 with ``choices`` as given."""

    def __init__(self, choices: Any) -> None:
        self.choices = choices
        self.calls = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        while (await receive()).get("more_body"):
            pass
        self.calls += 1
        body = json.dumps({"id": "x", "object": "chat.completion", "created": int(time.time()),
                           "choices": self.choices}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _odd_cascade(gateway_factory, standin_urls, server):
    return gateway_factory({"profiles": {"polyroute-cascade": {"policy": {
        "kind": "cascade", "threshold": 0.2, "lam": 0.1, "scorer": "heuristic"}}}},
        urls={**standin_urls, "gamma": server.url})


@pytest.mark.parametrize("stream", [True, False])
def test_a_cascade_step_answering_choices_5_is_a_bad_answer(gateway_factory, standins,
                                                            standin_urls, stream):
    odd = _Odd(5)
    with ServerThread(odd) as server:
        gw = _odd_cascade(gateway_factory, standin_urls, server)
        r = gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=stream)
        assert odd.calls >= 1
    assert r.status_code == 200, r.text
    assert r.headers["x-polyroute-model"] != "gamma"
    row = _finished_row(gw, r)
    assert ("gamma", "bad_response") in [(a.backend, a.outcome) for a in row.attempts]


@pytest.mark.parametrize("choices", [
    [5], [{"message": "text"}], [{"message": {"content": [{"type": "text", "text": 5}]}}],
    [{"message": {"content": [{"type": "text", "text": None}, "part", 3]}}],
])
def test_a_cascade_step_with_odd_choices_is_scored_not_a_500(gateway_factory, standins,
                                                             standin_urls, choices):
    odd = _Odd(choices)
    with ServerThread(odd) as server:
        gw = _odd_cascade(gateway_factory, standin_urls, server)
        r = gw.chat(MATH_PROMPT, model="polyroute-cascade", stream=True)
        assert odd.calls >= 1
    assert r.status_code == 200, r.text
    assert _finished_row(gw, r).status == "ok"


# -- /v1/feedback --------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, param", [
    (b'{"request_id": "REQ", "score": 1, "comment": "\\ud800"}', "comment"),
    (b'{"request_id": "REQ\\udc00", "score": 1}', "request_id"),
    (b'{"request_id": ' + b"[" * 5000 + b"]" * 5000 + b', "score": 1}', None),
    (b'{"request_id": "REQ", "score": NaN}', None),
    (b'{"request_id": "REQ", "score": 1, "\\ud800": 1}', None),
])
def test_feedback_refuses_hostile_input_with_an_openai_error(gateway, raw, param):
    rid = gateway.chat(MATH_PROMPT).headers["x-polyroute-request-id"]
    err = _error(_post(gateway, raw.replace(b"REQ", rid.encode()), "/v1/feedback"))
    assert err["param"] == param and err["type"] == "invalid_request_error"
    with gateway.client() as c:
        ok = c.post("/v1/feedback", json={"request_id": rid, "score": 1})
    assert ok.status_code == 200, ok.text

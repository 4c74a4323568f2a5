"""The Anthropic Messages translators on recorded request/response pairs, their edge checks,
and a fuzz of the parser and the stream shaper: nothing but a 400 ever comes out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from translation_fixtures import (
    FUZZ_SETTINGS,
    chunk,
    chunks_to_sse,
    fixture_names,
    load,
    message_bodies,
    normalize,
    sse_events,
)

from polyroute.gateway.apis.messages import (
    MessagesExchange,
    MessagesStream,
    count_tokens,
    error_body,
    estimate_tokens,
    messages_to_chat,
)
from polyroute.gateway.body import parse_chat
from polyroute.gateway.errors import APIError


def _exchange(case: dict[str, Any]) -> MessagesExchange:
    request = case["client_request"]
    chat = messages_to_chat(request)
    return MessagesExchange(request["model"], tuple(request.get("stop_sequences") or ()),
                            estimate_tokens(chat))


@pytest.mark.parametrize("name", fixture_names("messages"))
def test_request_translation(name):
    case = load("messages", name)
    chat = messages_to_chat(case["client_request"])
    assert chat == case["internal_request"]
    parse_chat(chat, {})  # the internal request passes the chat checks


@pytest.mark.parametrize("name", [n for n in fixture_names("messages")
                                  if not n.startswith("stream")])
def test_answer_translation(name):
    case = load("messages", name)
    body = _exchange(case).answer(case["internal_response"])
    assert normalize(json.loads(body)) == case["client_response"]


@pytest.mark.parametrize("name", fixture_names("messages", "stream"))
@pytest.mark.parametrize("split", [False, True])
def test_stream_translation(name, split):
    case = load("messages", name)
    shaper = _exchange(case).stream()
    raw = chunks_to_sse(case["internal_stream"])
    if split:  # one event per batch, and finish() after [DONE] adds nothing
        out = b"".join(shaper.feed(chunks_to_sse([c])) for c in case["internal_stream"])
    else:
        out = shaper.feed(raw)
    out += shaper.finish()
    assert normalize(sse_events(out)) == case["client_stream"]


def test_stream_without_done_is_closed_by_finish():
    shaper = MessagesStream(model="m")
    out = shaper.feed(chunks_to_sse([{"choices": [{"index": 0, "delta": {"content": "x"},
                                                   "finish_reason": "length"}]}]))
    kinds = [e["event"] for e in sse_events(out + shaper.finish())]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert sse_events(out + b"")[-1]["event"] == "content_block_delta"
    assert shaper.finish() == b""


def test_stream_error_event():
    shaper = MessagesStream(model="m")
    (event,) = sse_events(shaper.error("backend x failed mid-stream", "backend_stream_error"))
    assert event == {"event": "error", "data": {"type": "error", "error": {
        "type": "api_error", "message": "backend x failed mid-stream"}}}


@pytest.mark.parametrize("status, kind", [(400, "invalid_request_error"),
                                          (401, "authentication_error"),
                                          (404, "not_found_error"), (429, "rate_limit_error"),
                                          (502, "api_error"), (503, "overloaded_error"),
                                          (504, "timeout_error")])
def test_error_shape(status, kind):
    assert json.loads(error_body(APIError(status, "m"))) == {
        "type": "error", "error": {"type": kind, "message": "m"}}


def test_count_tokens_counts_system_messages_and_tools():
    body = {"model": "m", "system": "abcd" * 10,
            "messages": [{"role": "user", "content": "x" * 100}]}
    assert count_tokens(body) == {"input_tokens": 35}
    with_tools = count_tokens({**body, "tools": [{"name": "f", "input_schema": {}}]})
    assert with_tools["input_tokens"] > 35


_BASE = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("change, param", [
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "document"}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64"}}]}]}, "messages[0].content[0].source.media_type"),
    ({"temperature": 1.5}, "temperature"),
    ({"stop_sequences": ["a"] * 5}, "stop_sequences"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"metadata": {"user_id": 5}}, "metadata.user_id"),
    ({"system": [{"type": "image"}]}, "system[0].text"),
])
def test_edge_checks_name_the_field(change, param):
    body = {**_BASE, **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(APIError) as exc:
        messages_to_chat(body)
    assert exc.value.status == 400 and exc.value.param == param


# -- fuzz ----------------------------------------------------------------------------------------


@settings(**FUZZ_SETTINGS)
@given(message_bodies)
def test_fuzz_parser_only_ever_refuses_with_a_400(body):
    try:
        chat = messages_to_chat(body)
        parse_chat(chat, {})
        count_tokens(body)
    except APIError as exc:
        assert exc.status == 400




@settings(**FUZZ_SETTINGS)
@given(st.lists(chunk | st.just("[DONE]"), max_size=6))
def test_fuzz_shapers_never_raise(chunks):
    shaper = MessagesStream(model="m", stops=("x",))
    out = shaper.feed(chunks_to_sse(chunks)) + shaper.finish()
    events = sse_events(out)
    assert [e["event"] for e in events][-1:] in ([], ["message_stop"])
    for c in chunks:
        if isinstance(c, dict):
            json.loads(MessagesExchange("m", (), 0).answer(c))


def test_a_coding_agent_turn_is_taken():
    """The shape coding agents send: cached system and tool blocks, agent tools, a thinking
    budget, a tool round trip, cache_control on blocks, and fields with no upstream meaning."""
    cache = {"type": "ephemeral"}
    body = {
        "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True, "temperature": 1,
        "system": [{"type": "text", "text": "You are a coding agent.", "cache_control": cache}],
        "tools": [{"name": "Bash", "description": "Run a command", "cache_control": cache,
                   "input_schema": {"type": "object",
                                    "properties": {"command": {"type": "string"}}}}],
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "metadata": {"user_id": "user_abc_session_1"}, "context_management": {"edits": []},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<reminder>"},
                                         {"type": "text", "text": "run the tests"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                               "name": "Bash", "input": {"command": "pytest"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": "2 passed", "cache_control": cache}]}],
    }
    chat = messages_to_chat(body)
    request = parse_chat(chat, {})
    assert chat["reasoning_effort"] == "high" and chat["user"] == "user_abc_session_1"
    assert chat["messages"][1] == {"role": "user", "content": [
        {"type": "text", "text": "<reminder>"}, {"type": "text", "text": "run the tests"}]}
    assert chat["messages"][-1] == {"role": "tool", "tool_call_id": "toolu_1",
                                    "content": "2 passed"}
    assert "context_management" not in chat and request.stream and request.wants_usage

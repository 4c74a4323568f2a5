"""The Responses translators on recorded request/response pairs, their edge checks, and a fuzz
of the parser and the stream shaper: nothing but a 400 ever comes out."""

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
    normalize,
    response_bodies,
    sse_events,
)

from polyroute.gateway.apis.responses import (
    ResponsesExchange,
    ResponsesStream,
    check_request,
    responses_to_chat,
)
from polyroute.gateway.body import parse_chat
from polyroute.gateway.errors import APIError


def _translate(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    check_request(body)
    return responses_to_chat(body)


@pytest.mark.parametrize("name", fixture_names("responses"))
def test_request_translation(name):
    case = load("responses", name)
    chat, _ = _translate(case["client_request"])
    assert chat == case["internal_request"]
    parse_chat(chat, {})


@pytest.mark.parametrize("name", [n for n in fixture_names("responses")
                                  if not n.startswith("stream")])
def test_answer_translation(name):
    case = load("responses", name)
    kept: list[tuple[dict, list]] = []
    request = case["client_request"]
    chat, items = _translate(request)
    exchange = ResponsesExchange(request, items)
    if request.get("store", True):
        exchange.keep = lambda response, conversation: kept.append((response, conversation))
    response = normalize(json.loads(exchange.answer(case["internal_response"])))
    if "client_response" in case:
        assert response == case["client_response"]
    for field in ("output", "usage", "status", "incomplete_details"):
        if f"client_response_{field}" in case:
            assert response[field] == case[f"client_response_{field}"]
    if request.get("store", True):  # kept: the input items, then the output
        ((stored, conversation),) = kept
        assert normalize(stored) == response
        assert conversation[:len(items)] == items
        assert normalize(conversation[len(items):]) == response["output"]
    else:
        assert kept == []


@pytest.mark.parametrize("name", fixture_names("responses", "stream"))
@pytest.mark.parametrize("split", [False, True])
def test_stream_translation(name, split):
    case = load("responses", name)
    request = case["client_request"]
    _, items = _translate(request)
    kept: list[dict] = []
    exchange = ResponsesExchange(request, items, keep=lambda r, c: kept.append(r))
    shaper = exchange.stream()
    if split:
        out = b"".join(shaper.feed(chunks_to_sse([c])) for c in case["internal_stream"])
    else:
        out = shaper.feed(chunks_to_sse(case["internal_stream"]))
    events = normalize([e["data"] for e in sse_events(out + shaper.finish())])
    expected = case["client_stream_events"]
    assert [(e["type"], e["sequence_number"]) for e in events] == \
        [(kind, seq) for kind, seq, _ in expected]
    for event, (_, _, fields) in zip(events, expected, strict=True):
        where = event["response"] if "response" in event else event
        assert {k: where[k] for k in fields} == fields
    # The stream's final Response is the one kept, and every lifecycle event names it.
    assert len(kept) == 1 and normalize(kept[0])["output"] == events[-1]["response"]["output"]
    assert {e["response"]["id"] for e in events if "response" in e} == {"<resp_1>"}


def test_stream_error_ends_failed():
    exchange = ResponsesExchange({"model": "m", "input": "x"}, [])
    shaper = ResponsesStream(exchange)
    out = shaper.feed(chunks_to_sse([{"choices": [{"index": 0, "delta": {"content": "a"}}]}]))
    out += shaper.error("backend b failed mid-stream", "backend_stream_error")
    events = [e["data"] for e in sse_events(out)]
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "backend_stream_error"
    assert events[-1]["response"]["status"] == "failed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert shaper.finish() == b""


def test_history_comes_before_the_new_input():
    history = [{"type": "message", "role": "user", "content": "first"},
               {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "one", "annotations": []}]}]
    chat, items = responses_to_chat({"model": "m", "input": "second",
                                     "instructions": "Be terse."}, history)
    assert chat["messages"] == [{"role": "system", "content": "Be terse."},
                                {"role": "user", "content": "first"},
                                {"role": "assistant", "content": "one"},
                                {"role": "user", "content": "second"}]
    assert items[:2] == history and items[2]["content"] == "second"


_BASE = {"model": "m", "input": "hi"}


@pytest.mark.parametrize("change, param", [
    ({"input": None}, "input"),
    ({"input": 5}, "input"),
    ({"input": []}, "input"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
     "input[0].call_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0].type"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [{"type": "function"}]}, "tools[0].name"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"background": True}, "background"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
])
def test_edge_checks_name_the_field(change, param):
    body = {k: v for k, v in {**_BASE, **change}.items() if v is not None}
    with pytest.raises(APIError) as exc:
        check_request(body)
    assert exc.value.status == 400 and exc.value.param == param


# -- fuzz ----------------------------------------------------------------------------------------


@settings(**FUZZ_SETTINGS)
@given(response_bodies)
def test_fuzz_parser_only_ever_refuses_with_a_400(body):
    try:
        chat, items = _translate(body)
        parse_chat(chat, {})
        ResponsesExchange(body, items).answer({"choices": []})
    except APIError as exc:
        assert exc.status == 400




@settings(**FUZZ_SETTINGS)
@given(st.lists(chunk | st.just("[DONE]"), max_size=6))
def test_fuzz_shapers_never_raise(chunks):
    exchange = ResponsesExchange({"model": "m", "input": "x"}, [])
    shaper = exchange.stream()
    events = [e["data"] for e in sse_events(shaper.feed(chunks_to_sse(chunks)) +
                                            shaper.finish())]
    assert events[-1]["type"] in ("response.completed", "response.incomplete")
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for c in chunks:
        if isinstance(c, dict):
            json.loads(exchange.answer(c))

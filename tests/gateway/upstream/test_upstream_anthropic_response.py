"""Anthropic Messages answer → chat completion, and error bodies → OpenAI's error shape."""

from __future__ import annotations

import json

import pytest
from anthropic_fixtures import load, names

from polyroute.config import AnthropicConfig
from polyroute.gateway.upstream import UpstreamFormatError
from polyroute.gateway.upstream.anthropic import AnthropicDialect
from polyroute.gateway.upstream.anthropic_response import (
    to_chat_completion,
    to_openai_error,
    usage_of,
)


@pytest.mark.parametrize("name", names("response_"))
def test_recorded_pairs(name):
    case = load(name)
    out = to_chat_completion(case["anthropic"], keep_thinking=True)
    assert isinstance(out.pop("created"), int)
    assert out == case["chat"]


def test_thinking_can_be_dropped():
    out = to_chat_completion(load("response_thinking.json")["anthropic"], keep_thinking=False)
    assert "reasoning_content" not in out["choices"][0]["message"]


@pytest.mark.parametrize("stop,finish", [("end_turn", "stop"), ("stop_sequence", "stop"),
                                         ("max_tokens", "length"), ("tool_use", "tool_calls"),
                                         ("refusal", "content_filter"), (None, "stop"),
                                         ("something_new", "stop")])
def test_stop_reasons(stop, finish):
    message = {"type": "message", "content": [], "stop_reason": stop}
    assert to_chat_completion(message, keep_thinking=True)["choices"][0]["finish_reason"] == finish


def test_a_message_of_only_tool_use_has_no_content():
    message = {"type": "message", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": {"a": [1, "é"]}}]}
    reply = to_chat_completion(message, keep_thinking=True)["choices"][0]["message"]
    assert reply["content"] is None
    assert json.loads(reply["tool_calls"][0]["function"]["arguments"]) == {"a": [1, "é"]}


@pytest.mark.parametrize("bad", [[], "x", None, {"type": "message"}, {"content": "text"},
                                 {"content": [1]}, {"content": [{"type": "text"}]},
                                 {"content": [{"type": "tool_use", "name": "f"}]},
                                 {"type": "error", "error": {"message": "overloaded"}}])
def test_what_is_not_a_message_is_a_format_error(bad):
    with pytest.raises(UpstreamFormatError):
        to_chat_completion(bad, keep_thinking=True)


def test_the_dialect_reads_bytes_and_refuses_non_json():
    dialect = AnthropicDialect(AnthropicConfig())
    body = json.dumps(load("response_text.json")["anthropic"]).encode()
    assert json.loads(dialect.answer(body))["choices"][0]["message"]["content"] == \
        "Hi! My name is Claude."
    with pytest.raises(UpstreamFormatError):
        dialect.answer(b"<html>bad gateway</html>")


def test_usage_counts_cached_input_as_prompt_tokens():
    assert usage_of({"input_tokens": 5, "cache_read_input_tokens": 100,
                     "cache_creation_input_tokens": 20, "output_tokens": 7}) == {
        "prompt_tokens": 125, "completion_tokens": 7, "total_tokens": 132,
        "prompt_tokens_details": {"cached_tokens": 100}}
    assert usage_of({"input_tokens": -3, "output_tokens": True}) == {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert usage_of("none") is None


@pytest.mark.parametrize("name", names("error_"))
def test_error_bodies_take_the_openai_shape(name):
    case = load(name)
    out = json.loads(to_openai_error(json.dumps(case["anthropic"]).encode()))
    assert out["error"]["message"] == case["anthropic"]["error"]["message"]
    assert out["error"]["type"] == case["anthropic"]["error"]["type"]


def test_an_unreadable_error_body_passes_as_it_is():
    assert to_openai_error(b"upstream exploded") == b"upstream exploded"
    assert to_openai_error(b'{"error": "x"}') == b'{"error": "x"}'

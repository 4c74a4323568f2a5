"""Chat Completions request → Anthropic Messages request, replayed from the recorded pairs."""

from __future__ import annotations

import pytest
from anthropic_fixtures import load, names

from polyroute.config import AnthropicConfig
from polyroute.gateway.upstream import UpstreamUnsupported
from polyroute.gateway.upstream.anthropic_request import to_messages_request

SETTINGS = AnthropicConfig()


def user(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("name", names("request_"))
def test_recorded_pairs(name):
    case = load(name)
    assert to_messages_request(case["chat"], model=case["model"], stream=case["stream"],
                               settings=SETTINGS) == case["anthropic"]


def test_default_max_tokens_comes_from_the_backend():
    settings = AnthropicConfig(default_max_tokens=123)
    out = to_messages_request({"messages": user()}, model="m", stream=False, settings=settings)
    assert out["max_tokens"] == 123


@pytest.mark.parametrize("effort,max_tokens,expected", [
    ("low", 8000, {"type": "enabled", "budget_tokens": 1024}),
    ("high", 8000, {"type": "enabled", "budget_tokens": 7999}),  # cut below max_tokens
    ("high", 1024, None),  # no budget of 1024 fits below 1024 tokens
    ("minimal", 8000, None),  # not in the map: no thinking
])
def test_reasoning_effort_maps_to_a_thinking_budget(effort, max_tokens, expected):
    body = {"messages": user(), "reasoning_effort": effort, "max_tokens": max_tokens,
            "temperature": 0.3}
    out = to_messages_request(body, model="m", stream=False, settings=SETTINGS)
    assert out.get("thinking") == expected
    assert ("temperature" in out) == (expected is None)  # not accepted with thinking


def test_no_thinking_when_a_tool_use_turn_is_continued():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [*user("q"), {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    body = {"messages": messages, "reasoning_effort": "low", "max_tokens": 4000}
    assert "thinking" not in to_messages_request(body, model="m", stream=False,
                                                 settings=SETTINGS)
    body["messages"] = [*messages, {"role": "assistant", "content": "42."}, *user("next")]
    assert to_messages_request(body, model="m", stream=False, settings=SETTINGS)["thinking"]


def test_the_thinking_map_is_configurable():
    settings = AnthropicConfig(thinking_budgets={"xhigh": 30000})
    body = {"messages": user(), "reasoning_effort": "xhigh", "max_tokens": 40000}
    out = to_messages_request(body, model="m", stream=False, settings=settings)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 30000}


@pytest.mark.parametrize("choice,expected", [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
])
def test_tool_choice(choice, expected):
    body = {"messages": user(), "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": choice}
    assert to_messages_request(body, model="m", stream=False,
                               settings=SETTINGS)["tool_choice"] == expected


def test_tool_choice_without_tools_is_not_sent():
    out = to_messages_request({"messages": user(), "tool_choice": "required"}, model="m",
                              stream=False, settings=SETTINGS)
    assert "tool_choice" not in out and "tools" not in out


def test_a_result_goes_before_text_in_its_turn():
    messages = [*user("q"), {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "and also"},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    out = to_messages_request({"messages": messages}, model="m", stream=False,
                              settings=SETTINGS)
    assert [t["role"] for t in out["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in out["messages"][2]["content"]] == ["tool_result", "text"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "f", "input": {}}]


@pytest.mark.parametrize("body", [
    {"messages": user(), "n": 2},
    {"messages": user(), "logprobs": True},
    {"messages": user(), "functions": [{"name": "f"}]},
    {"messages": user(), "response_format": {"type": "json_object"}},
    {"messages": [{"role": "user", "content": [{"type": "input_audio",
                                                "input_audio": {"data": "x"}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                "image_url": {"url": "ftp://x/y.png"}}]}]},
    {"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]},
    {"messages": user(), "tools": [{"type": "web_search"}]},
    {"messages": [{"role": "function", "name": "f", "content": "x"}]},
])
def test_what_anthropic_cannot_express_is_refused(body):
    with pytest.raises(UpstreamUnsupported):
        to_messages_request(body, model="m", stream=False, settings=SETTINGS)

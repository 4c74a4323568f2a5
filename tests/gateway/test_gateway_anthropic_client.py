"""The official ``anthropic`` client talks to the gateway's ``/v1/messages`` as it does to
Anthropic: plain, streamed (both ways the client streams), with tools, errors and token counts."""

from __future__ import annotations

import json

import anthropic
import pytest
from gateway_world import KEY, MATH_PROMPT, POETRY_PROMPT
from standin import TOOL_ARGUMENTS

WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


@pytest.fixture
def client(dialect_gateway):
    c = anthropic.Anthropic(base_url=dialect_gateway.url, api_key=KEY, max_retries=0,
                            timeout=30)
    yield c
    c.close()


def test_create_is_routed_and_shaped(client, standins):
    raw = client.messages.with_raw_response.create(
        model="polyroute-auto", max_tokens=100, system="Be brief.",
        messages=[{"role": "user", "content": MATH_PROMPT}], stop_sequences=["\n\n"],
        metadata={"user_id": "u-1"}, output_config={"effort": "xhigh"},
        extra_body={"temperature": 0.2})
    message = raw.parse()
    assert raw.headers["x-polyroute-model"] == "alpha"
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.model == "polyroute-auto"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "alpha answers"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 20)
    sent = standins["alpha"].requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": MATH_PROMPT}]
    assert sent["max_tokens"] == 100 and sent["stop"] == ["\n\n"]
    assert sent["temperature"] == 0.2 and sent["user"] == "u-1"
    assert sent["reasoning_effort"] == "high"


def test_length_stop_reason(client, standins):
    standins["alpha"].completion_tokens = 50
    try:
        message = client.messages.create(model="alpha", max_tokens=5,
                                         messages=[{"role": "user", "content": "hi"}])
    finally:
        standins["alpha"].completion_tokens = None
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 5


def test_stream_helper_accumulates_the_message(client):
    with client.messages.stream(model="polyroute-auto", max_tokens=100,
                                messages=[{"role": "user", "content": POETRY_PROMPT}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    expected = "".join(f"beta answers {i}|" for i in range(5))
    assert text == expected and final.content[0].text == expected
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 5)


def test_raw_stream_has_anthropics_event_sequence(client):
    events = list(client.messages.create(model="polyroute-auto", max_tokens=100, stream=True,
                                         messages=[{"role": "user", "content": MATH_PROMPT}]))
    kinds = [e.type for e in events]
    assert kinds == ["message_start", "content_block_start"] + ["content_block_delta"] * 5 + \
        ["content_block_stop", "message_delta", "message_stop"]
    assert events[0].message.usage.output_tokens == 0
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 5


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_round_trip(client, standins, stream):
    for s in standins.values():
        s.mode = "tool_call"
    kwargs = dict(model="polyroute-auto", max_tokens=100, tools=[WEATHER],
                  tool_choice={"type": "any"},
                  messages=[{"role": "user", "content": "Weather in Paris? " + MATH_PROMPT}])
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.stop_reason == "tool_use"
    (call,) = message.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == json.loads(TOOL_ARGUMENTS)
    sent = standins["alpha"].requests[-1]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert sent["tool_choice"] == "required"
    # The tool's result goes back; the gateway turns it into a ``tool`` message.
    for s in standins.values():
        s.mode = "ok"
    follow = client.messages.create(
        model="polyroute-auto", max_tokens=100, tools=[WEATHER], messages=[
            *kwargs["messages"], {"role": "assistant", "content": [c.model_dump()
                                                                   for c in message.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                          "content": "sunny, 21 °C"}]}])
    assert follow.content[0].text == "alpha answers"
    history = standins["alpha"].requests[-1]["messages"]
    assert history[-2]["tool_calls"][0]["function"] == {"name": "get_weather",
                                                        "arguments": json.dumps(call.input)}
    assert history[-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 °C"}


def test_errors_have_anthropics_shape(client, dialect_gateway, standins):
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.create(model="polyroute-auto", max_tokens=0,
                               messages=[{"role": "user", "content": "x"}])
    assert exc.value.body["type"] == "error"
    assert exc.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in exc.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="nope", max_tokens=5,
                               messages=[{"role": "user", "content": "x"}])
    bad = anthropic.Anthropic(base_url=dialect_gateway.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as exc:
        bad.messages.create(model="polyroute-auto", max_tokens=5,
                            messages=[{"role": "user", "content": "x"}])
    assert exc.value.body["error"]["type"] == "authentication_error"
    bad.close()
    for s in standins.values():
        s.mode = "500"
    with pytest.raises(anthropic.InternalServerError) as exc:
        client.messages.create(model="polyroute-auto", max_tokens=5,
                               messages=[{"role": "user", "content": MATH_PROMPT}])
    assert exc.value.status_code == 502 and exc.value.body["error"]["type"] == "api_error"


def test_a_stream_broken_midway_raises_in_the_client(client, standins):
    for s in standins.values():
        s.mode = "drop_mid"
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model="polyroute-auto", max_tokens=100,
                                    messages=[{"role": "user", "content": MATH_PROMPT}]) as s:
            s.get_final_message()


def test_count_tokens_and_models(client):
    count = client.messages.count_tokens(
        model="polyroute-auto", system="s" * 40,
        messages=[{"role": "user", "content": "x" * 400}])
    assert count.input_tokens == 110  # (40 + 400) characters / 4
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert "polyroute-auto" in ids and "alpha" in ids
    assert all(m.type == "model" for m in models.data)


def test_wire_details_the_client_hides(dialect_gateway):
    """Raw HTTP: x-api-key alone authenticates, the stream starts with a ping after
    message_start, /v1/models answers in each API's shape by its headers."""
    with dialect_gateway.client(key=None) as http:
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        raw = http.post("/v1/messages", headers=headers, json={
            "model": "polyroute-auto", "max_tokens": 10, "stream": True,
            "messages": [{"role": "user", "content": MATH_PROMPT}]})
        assert raw.status_code == 200
        names = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
        assert names[:3] == ["message_start", "ping", "content_block_start"]
        assert names[-1] == "message_stop"
        anthropic_list = http.get("/v1/models", headers=headers).json()
        assert anthropic_list["has_more"] is False and anthropic_list["data"][0]["type"] == "model"
        assert anthropic_list["first_id"] == anthropic_list["data"][0]["id"]
        openai_list = http.get("/v1/models", headers={"authorization": f"Bearer {KEY}"}).json()
        assert openai_list["object"] == "list" and openai_list["data"][0]["object"] == "model"
        refused = http.post("/v1/messages", headers={"x-api-key": "wrong"}, json={})
        assert refused.status_code == 401
        assert refused.json() == {"type": "error", "error": {"type": "authentication_error",
                                                             "message": "invalid API key"}}

"""Every client API × every upstream dialect, with the official clients: a plain answer, a
streamed one, and a tool call — Chat Completions, Anthropic Messages and OpenAI Responses on the
client side; OpenAI-compatible and Anthropic Messages backends upstream."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from anthropic_standin import ANTHROPIC_KEY, AnthropicStandIn
from gateway_world import KEY, MATH_PROMPT
from standin import ServerThread

WEATHER_ARGS = {"city": "Paris"}
CHAT_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def _claudes():
    servers = {}
    for name in ("alpha", "beta", "gamma"):
        app = AnthropicStandIn(name)
        servers[name] = (app, ServerThread(app).start())
    yield servers
    for _, server in servers.values():
        server.stop()


@pytest.fixture(params=["openai", "anthropic"])
def upstream(request, gateway_factory, standins, _claudes):
    """(gateway, set tool mode) with every backend speaking ``request.param``."""
    if request.param == "openai":
        def tools_on() -> None:
            for s in standins.values():
                s.mode = "tool_call"
        return gateway_factory(), tools_on
    for app, _ in _claudes.values():
        app.reset()
    gw = gateway_factory(
        backends={name: {"dialect": "anthropic", "base_url": server.url,
                         "model": f"claude-{name}", "api_key_env": "ANTHROPIC_API_KEY"}
                  for name, (_, server) in _claudes.items()},
        env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    return gw, lambda: None  # the Anthropic stand-in calls a tool whenever tools are given


def _text_ok(text: str) -> None:
    assert isinstance(text, str) and text.strip()


def test_chat_completions(upstream):
    gw, tools_on = upstream
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    msg = [{"role": "user", "content": MATH_PROMPT}]
    _text_ok(client.chat.completions.create(model="polyroute-auto", messages=msg)
             .choices[0].message.content)
    chunks = list(client.chat.completions.create(model="polyroute-auto", messages=msg,
                                                 stream=True))
    _text_ok("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
    assert chunks[-1].choices[0].finish_reason == "stop"
    tools_on()
    call = client.chat.completions.create(model="polyroute-auto", messages=msg,
                                          tools=[CHAT_TOOL]).choices[0]
    assert call.finish_reason == "tool_calls"
    assert call.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(call.message.tool_calls[0].function.arguments) == WEATHER_ARGS
    client.close()


def test_anthropic_messages(upstream):
    gw, tools_on = upstream
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0, timeout=30)
    msg = [{"role": "user", "content": MATH_PROMPT}]
    m = client.messages.create(model="polyroute-auto", max_tokens=64, messages=msg)
    assert m.stop_reason == "end_turn"
    _text_ok(m.content[0].text)
    with client.messages.stream(model="polyroute-auto", max_tokens=64, messages=msg) as s:
        _text_ok("".join(s.text_stream))
        assert s.get_final_message().stop_reason == "end_turn"
    tools_on()
    m = client.messages.create(
        model="polyroute-auto", max_tokens=64, messages=msg,
        tools=[{"name": "get_weather", "description": "Weather of a city",
                "input_schema": CHAT_TOOL["function"]["parameters"]}])
    assert m.stop_reason == "tool_use"
    use = [b for b in m.content if b.type == "tool_use"][0]
    assert use.name == "get_weather" and use.input == WEATHER_ARGS
    client.close()


def test_openai_responses(upstream):
    gw, tools_on = upstream
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    r = client.responses.create(model="polyroute-auto", input=MATH_PROMPT)
    assert r.status == "completed"
    _text_ok(r.output_text)
    events = list(client.responses.create(model="polyroute-auto", input=MATH_PROMPT,
                                          stream=True))
    assert events[-1].type == "response.completed"
    _text_ok("".join(e.delta for e in events if e.type == "response.output_text.delta"))
    follow = client.responses.create(model="polyroute-auto", input="And why?",
                                     previous_response_id=r.id)
    assert follow.status == "completed"
    tools_on()
    r = client.responses.create(
        model="polyroute-auto", input=MATH_PROMPT, tool_choice="required",
        tools=[{"type": "function", "name": "get_weather", "description": "Weather",
                "parameters": CHAT_TOOL["function"]["parameters"]}])
    call = [o for o in r.output if o.type == "function_call"][0]
    assert call.name == "get_weather" and json.loads(call.arguments) == WEATHER_ARGS
    client.close()

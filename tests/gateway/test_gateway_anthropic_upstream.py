"""End to end: the official ``openai`` client talks Chat Completions to the gateway, which routes
to a backend that speaks Anthropic's Messages API (a stand-in on loopback) and back.

``alpha`` is the Anthropic backend here (the router sends math prompts to it first); ``beta`` and
``gamma`` stay OpenAI-compatible stand-ins, so a broken Anthropic answer must fall back to them.
"""

from __future__ import annotations

import json

import openai
import pytest
from anthropic_standin import ANTHROPIC_KEY, AnthropicStandIn
from gateway_world import KEY, MATH_PROMPT, wait_for
from standin import ServerThread

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def _anthropic_server():
    app = AnthropicStandIn("alpha")
    with ServerThread(app) as server:
        yield app, server


@pytest.fixture
def claude(_anthropic_server) -> AnthropicStandIn:
    app, _ = _anthropic_server
    app.reset()
    return app


@pytest.fixture
def gw(gateway_factory, standins, claude, _anthropic_server):
    _, server = _anthropic_server
    return gateway_factory(
        backends={"alpha": {"dialect": "anthropic", "base_url": server.url,
                            "model": "claude-haiku-4-5", "api_key_env": "ANTHROPIC_API_KEY"}},
        env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})


@pytest.fixture
def client(gw):
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    yield c
    c.close()


def _record(gw, request_id: str):
    """The request's record once it is written (a stream's is, once it has ended)."""
    def finished():
        gw.flush()
        rec = gw.gateway.store.get_request(request_id)
        return rec is not None and rec.status != "in_progress"

    wait_for(finished, f"the record of {request_id}")
    return gw.gateway.store.get_request(request_id)


def test_non_streaming_chat_is_answered_by_the_anthropic_backend(client, gw, claude):
    raw = client.chat.completions.with_raw_response.create(
        model="alpha", messages=[{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": MATH_PROMPT}])
    completion = raw.parse()
    assert raw.headers["x-polyroute-model"] == "alpha"
    assert completion.choices[0].message.content == "alpha answers"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 14 and completion.usage.completion_tokens == 12
    assert completion.usage.prompt_tokens_details.cached_tokens == 4
    sent, headers = claude.requests[-1], claude.headers[-1]
    assert sent["model"] == "claude-haiku-4-5" and sent["system"] == "Be brief."
    assert sent["max_tokens"] == 4096
    assert headers["x-api-key"] == ANTHROPIC_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    rec = _record(gw, raw.headers["x-polyroute-request-id"])
    assert (rec.status, rec.prompt_tokens, rec.completion_tokens) == ("ok", 14, 12)
    assert rec.cost == pytest.approx((14 * 1.0 + 12 * 4.0) / 1e6)  # alpha's prices per Mtok


def test_streaming_chat(client, gw, claude):
    stream = client.chat.completions.create(
        model="polyroute-auto", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": MATH_PROMPT}], max_tokens=50)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "alpha answers"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 12
    assert claude.requests[-1]["stream"] is True and claude.requests[-1]["max_tokens"] == 50


def test_streaming_charges_real_tokens_without_a_usage_chunk(client, gw, claude):
    with client.chat.completions.with_streaming_response.create(
            model="alpha", stream=True,
            messages=[{"role": "user", "content": MATH_PROMPT}]) as response:
        request_id = response.headers["x-polyroute-request-id"]
        chunks = list(response.parse())
    assert all(c.usage is None for c in chunks)  # the client did not ask for it
    rec = _record(gw, request_id)
    assert (rec.status, rec.prompt_tokens, rec.completion_tokens) == ("ok", 14, 12)


def test_tools_round_trip(client, gw, claude):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="alpha", messages=messages, tools=[WEATHER],
                                           tool_choice="auto")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert claude.requests[-1]["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 C, cloudy"}]
    second = client.chat.completions.create(model="alpha", messages=messages, tools=[WEATHER])
    # The stand-in refuses a tool_result that does not answer the tool_use before it.
    assert second.choices[0].message.content == "alpha read: 18 C, cloudy"


def test_streamed_tool_call(client, gw, claude):
    stream = client.chat.completions.create(
        model="alpha", stream=True, tools=[WEATHER],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    name, arguments, finish, text = "", "", None, ""
    for chunk in stream:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for call in delta.tool_calls or []:
            assert call.index == 0
            name += call.function.name or ""
            arguments += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert (text, name, finish) == ("Let me check.", "get_weather", "tool_calls")
    assert json.loads(arguments) == {"city": "Paris"}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("failure", ["529", "429", "500", "garbage"])
def test_a_failing_anthropic_backend_falls_back(client, gw, claude, stream, failure):
    claude.mode = failure
    with client.chat.completions.with_streaming_response.create(
            model="polyroute-auto", stream=stream,
            messages=[{"role": "user", "content": MATH_PROMPT}]) as response:
        headers = response.headers
        response.read()
    assert headers["x-polyroute-model"] != "alpha"
    rec = _record(gw, headers["x-polyroute-request-id"])
    assert rec.attempts[0].backend == "alpha"
    assert rec.attempts[0].outcome == ("bad_response" if failure == "garbage"
                                       else f"http_{failure}")
    assert rec.status == "ok" and rec.fallbacks == 1


@pytest.mark.parametrize("failure", ["truncate_early", "garbage", "overloaded_event",
                                     "bad_order"])
def test_a_stream_broken_before_its_first_event_falls_back(client, gw, claude, failure):
    claude.mode = failure
    stream = client.chat.completions.with_streaming_response.create(
        model="polyroute-auto", stream=True,
        messages=[{"role": "user", "content": MATH_PROMPT}])
    with stream as response:
        chosen = response.headers["x-polyroute-model"]
        request_id = response.headers["x-polyroute-request-id"]
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert chosen != "alpha" and text.startswith(f"{chosen} answers")
    rec = _record(gw, request_id)
    assert rec.attempts[0].backend == "alpha" and rec.attempts[0].outcome == "bad_response"
    assert rec.status == "ok"


def test_a_stream_cut_before_message_stop_is_a_failure(client, gw, claude):
    claude.mode = "truncate"  # the whole text and its stop reason, but no message_stop
    with pytest.raises(openai.APIError):
        with client.chat.completions.with_streaming_response.create(
                model="alpha", stream=True,
                messages=[{"role": "user", "content": MATH_PROMPT}]) as response:
            request_id = response.headers["x-polyroute-request-id"]
            for _ in response.parse():
                pass
    rec = _record(gw, request_id)
    assert rec.status == "error" and "incomplete" in rec.error


def test_a_client_error_is_relayed_in_the_openai_shape(client, gw, claude):
    claude.mode = "400"
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="alpha",
                                       messages=[{"role": "user", "content": MATH_PROMPT}])
    assert exc.value.body["message"] == "alpha fails with 400"
    assert exc.value.body["type"] == "invalid_request_error"


def test_a_request_anthropic_cannot_express_goes_to_the_next_candidate(client, gw, claude):
    raw = client.chat.completions.with_raw_response.create(
        model="polyroute-auto", n=2, messages=[{"role": "user", "content": MATH_PROMPT}])
    assert raw.headers["x-polyroute-model"] != "alpha" and not claude.requests
    rec = _record(gw, raw.headers["x-polyroute-request-id"])
    assert rec.attempts[0].backend == "alpha" and rec.attempts[0].outcome == "unsupported"


def test_unsupported_requests_leave_the_backend_healthy(client, gw, claude):
    for _ in range(4):  # past the breaker's failure threshold (3)
        client.chat.completions.create(model="polyroute-auto", n=2,
                                       messages=[{"role": "user", "content": MATH_PROMPT}])
    raw = client.chat.completions.with_raw_response.create(
        model="polyroute-auto", messages=[{"role": "user", "content": MATH_PROMPT}])
    assert raw.headers["x-polyroute-model"] == "alpha"  # its breaker did not open


def test_a_request_no_candidate_can_express_is_a_400(client, gw, claude):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="alpha", n=2,
                                       messages=[{"role": "user", "content": MATH_PROMPT}])
    assert exc.value.code == "unsupported_by_backends" and "n > 1" in exc.value.message
    assert not claude.requests


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_becomes_a_thinking_budget(client, gw, claude, stream):
    answer = client.chat.completions.create(
        model="alpha", stream=stream, reasoning_effort="low", max_tokens=2000,
        messages=[{"role": "user", "content": MATH_PROMPT}])
    if stream:
        chunks = [c for c in answer if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "")
                            for c in chunks)
    else:
        text = answer.choices[0].message.content
        reasoning = answer.choices[0].message.model_extra["reasoning_content"]
    assert (text, reasoning) == ("alpha answers", "Let me think.")
    assert claude.requests[-1]["thinking"] == {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize("failure,stream", [
    ("garbage", False), ("garbage", True), ("bad_order", True), ("overloaded_event", True),
    ("truncate_early", True)])
def test_garbage_from_the_only_candidate_is_a_502_not_a_500(client, gw, claude, failure, stream):
    claude.mode = failure
    with pytest.raises(openai.APIStatusError) as exc:
        answer = client.chat.completions.create(
            model="alpha", stream=stream, messages=[{"role": "user", "content": MATH_PROMPT}])
        list(answer) if stream else None
    assert exc.value.status_code == 502

"""The official ``openai`` client's ``responses`` talks to the gateway's ``/v1/responses`` as it
does to OpenAI: plain, streamed (both ways), with function tools, and continuing a
conversation by ``previous_response_id`` from the gateway's store."""

from __future__ import annotations

import json

import openai
import pytest
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, POETRY_PROMPT
from standin import TOOL_ARGUMENTS

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


@pytest.fixture
def client(dialect_gateway):
    c = openai.OpenAI(base_url=f"{dialect_gateway.url}/v1", api_key=KEY, max_retries=0,
                      timeout=30)
    yield c
    c.close()


def test_create_is_routed_and_shaped(client, standins):
    raw = client.responses.with_raw_response.create(
        model="polyroute-auto", input=MATH_PROMPT, instructions="Be brief.",
        reasoning={"effort": "low"}, max_output_tokens=100, temperature=0.3)
    response = raw.parse()
    assert raw.headers["x-polyroute-model"] == "alpha"
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.output_text == "alpha answers"
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (10, 20)
    sent = standins["alpha"].requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": MATH_PROMPT}]
    assert sent["reasoning_effort"] == "low" and sent["max_completion_tokens"] == 100
    assert sent["temperature"] == 0.3


def test_incomplete_at_max_output_tokens(client, standins):
    standins["alpha"].completion_tokens = 50
    try:
        response = client.responses.create(model="alpha", input="hi", max_output_tokens=16)
    finally:
        standins["alpha"].completion_tokens = None
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


def test_stream_helper_gives_the_final_response(client):
    with client.responses.stream(model="polyroute-auto", input=POETRY_PROMPT) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    expected = "".join(f"beta answers {i}|" for i in range(5))
    assert "".join(deltas) == expected and final.output_text == expected
    assert final.status == "completed" and final.usage.output_tokens == 5


def test_raw_stream_has_the_responses_event_sequence(client):
    events = list(client.responses.create(model="polyroute-auto", input=MATH_PROMPT,
                                          stream=True))
    kinds = [e.type for e in events]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added"] + ["response.output_text.delta"] * 5 + \
        ["response.output_text.done", "response.content_part.done",
         "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.id == events[0].response.id


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_and_its_output(client, standins, stream):
    for s in standins.values():
        s.mode = "tool_call"
    ask = [{"role": "user", "content": "Weather in Paris? " + MATH_PROMPT}]
    kwargs = dict(model="polyroute-auto", input=ask, tools=[WEATHER], tool_choice="required")
    if stream:
        with client.responses.stream(**kwargs) as s:
            response = s.get_final_response()
    else:
        response = client.responses.create(**kwargs)
    (call,) = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == json.loads(TOOL_ARGUMENTS)
    sent = standins["alpha"].requests[-1]
    assert sent["tools"] == [{"type": "function", "function": {
        k: WEATHER[k] for k in ("name", "description", "parameters")}}]
    assert sent["tool_choice"] == "required"
    for s in standins.values():
        s.mode = "ok"
    follow = client.responses.create(model="polyroute-auto", tools=[WEATHER], input=[
        *ask, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert follow.output_text == "alpha answers"
    history = standins["alpha"].requests[-1]["messages"]
    assert history[-2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.call_id, "type": "function",
         "function": {"name": "get_weather", "arguments": call.arguments}}]}
    assert history[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id_continues_the_conversation(client, standins, stream):
    if stream:
        with client.responses.stream(model="polyroute-auto", input=MATH_PROMPT) as s:
            first = s.get_final_response()
    else:
        first = client.responses.create(model="polyroute-auto", input=MATH_PROMPT)
    second = client.responses.create(model="polyroute-auto", previous_response_id=first.id,
                                     input="And now for 9x?")
    assert second.previous_response_id == first.id
    history = standins["alpha"].requests[-1]["messages"]
    assert history == [{"role": "user", "content": MATH_PROMPT},
                       {"role": "assistant", "content": first.output_text},
                       {"role": "user", "content": "And now for 9x?"}]
    third = client.responses.create(model="polyroute-auto", previous_response_id=second.id,
                                    input="Thanks")
    assert len(standins["alpha"].requests[-1]["messages"]) == 5
    assert client.responses.retrieve(third.id).output_text == third.output_text


def test_stored_responses_belong_to_their_key(client, dialect_gateway):
    first = client.responses.create(model="polyroute-auto", input=MATH_PROMPT)
    other = openai.OpenAI(base_url=str(client.base_url), api_key=OTHER_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as exc:
        other.responses.create(model="polyroute-auto", previous_response_id=first.id,
                               input="x")
    assert exc.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(first.id)
    other.close()
    unstored = client.responses.create(model="polyroute-auto", input=MATH_PROMPT, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_errors_have_openais_shape(client, standins):
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="polyroute-auto", input=MATH_PROMPT,
                                tools=[{"type": "web_search"}])
    assert exc.value.param == "tools[0].type"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="nope", input="x")
    assert exc.value.code == "model_not_found"
    for s in standins.values():
        s.mode = "500"
    with pytest.raises(openai.InternalServerError) as exc:
        client.responses.create(model="polyroute-auto", input=MATH_PROMPT)
    assert exc.value.status_code == 502


def test_a_stream_broken_midway_ends_failed(client, standins):
    for s in standins.values():
        s.mode = "drop_mid"
    events = list(client.responses.create(model="polyroute-auto", input=MATH_PROMPT,
                                          stream=True))
    assert events[-2].type == "error" and events[-1].type == "response.failed"
    assert "response.completed" not in [e.type for e in events]

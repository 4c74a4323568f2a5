"""Every internal answer reaches a client in its API's shape: a buffered stream (a cascade
profile's), a cached answer, a relayed backend refusal — with the official clients; and hostile
bodies through the real gateway get a 400 in the API's shape or an answer, never a 5xx."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from gateway_world import KEY, MATH_PROMPT
from hypothesis import HealthCheck, given, settings
from translation_fixtures import FUZZ_SETTINGS, message_bodies, response_bodies

CASCADE = {"policy": {"kind": "cascade", "threshold": 0.2, "lam": 0.1, "scorer": "heuristic"}}


@pytest.fixture
def clients(gateway_factory, standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": CASCADE},
                          "cache": {"enabled": True}})
    a = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0, timeout=30)
    o = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    yield a, o
    a.close()
    o.close()


def test_buffered_multi_call_stream_is_shaped(clients, standins):
    a, o = clients
    standins["gamma"].reply = "I'm sorry, but I can't help with that."  # so it escalates
    with a.messages.stream(model="polyroute-cascade", max_tokens=50,
                           messages=[{"role": "user", "content": MATH_PROMPT}]) as s:
        message = s.get_final_message()
    assert message.content[0].text == "alpha answers" and message.stop_reason == "end_turn"
    with o.responses.stream(model="polyroute-cascade", input=MATH_PROMPT) as s:
        response = s.get_final_response()
    assert response.output_text == "alpha answers" and response.status == "completed"


def test_cached_answer_is_shaped(clients, standins):
    a, o = clients
    first = a.messages.create(model="polyroute-auto", max_tokens=50,
                              messages=[{"role": "user", "content": MATH_PROMPT}])
    calls = standins["alpha"].calls
    raw = a.messages.with_raw_response.create(
        model="polyroute-auto", max_tokens=50,
        messages=[{"role": "user", "content": MATH_PROMPT}])
    again = raw.parse()
    assert standins["alpha"].calls == calls  # served from the cache
    assert again.content[0].text == first.content[0].text and again.id != first.id
    again_streamed = list(a.messages.create(
        model="polyroute-auto", max_tokens=50, stream=True,
        messages=[{"role": "user", "content": MATH_PROMPT}]))
    assert again_streamed[-1].type == "message_stop"


def test_backend_refusal_is_said_in_the_clients_shape(clients, standins):
    a, o = clients
    for s in standins.values():
        s.mode = "400"
    with pytest.raises(anthropic.BadRequestError) as exc:
        a.messages.create(model="polyroute-auto", max_tokens=5,
                          messages=[{"role": "user", "content": MATH_PROMPT}])
    assert exc.value.body["type"] == "error" and "fails with 400" in \
        exc.value.body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        o.responses.create(model="polyroute-auto", input=MATH_PROMPT)
    assert "fails with 400" in exc.value.message


_E2E = dict(FUZZ_SETTINGS, max_examples=40,
            suppress_health_check=[*FUZZ_SETTINGS["suppress_health_check"],
                                   HealthCheck.function_scoped_fixture])


def _known_model(body: dict) -> dict:
    """The strategies' model ``m`` as a backend the gateway has, so most bodies are served."""
    return {**body, "model": "alpha"} if body.get("model") == "m" else body


@settings(**_E2E)
@given(body=message_bodies)
def test_fuzz_messages_endpoint_never_fails_inside(dialect_gateway, body):
    body = _known_model(body)
    with dialect_gateway.client() as http:
        r = http.post("/v1/messages", content=json.dumps(body))  # Infinity stays in
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        error = r.json()
        assert error["type"] == "error" and set(error["error"]) == {"type", "message"}
    elif not body.get("stream"):
        assert r.json()["type"] == "message"
    else:
        assert r.text.rstrip().endswith('data: {"type":"message_stop"}')


@settings(**_E2E)
@given(body=response_bodies)
def test_fuzz_responses_endpoint_never_fails_inside(dialect_gateway, body):
    body = _known_model(body)
    with dialect_gateway.client() as http:
        r = http.post("/v1/responses", content=json.dumps(body))
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    elif not body.get("stream"):
        assert r.json()["object"] == "response"
    else:
        assert "event: response.completed" in r.text

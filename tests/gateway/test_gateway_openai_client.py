"""The official ``openai`` client talks to the gateway exactly as it talks to OpenAI."""

from __future__ import annotations

import openai
import pytest
from gateway_world import KEY, MATH_PROMPT, POETRY_PROMPT


@pytest.fixture
def client(gateway):
    c = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    yield c
    c.close()


def test_non_streaming_completion(client, gateway):
    raw = client.chat.completions.with_raw_response.create(
        model="polyroute-auto", messages=[{"role": "user", "content": MATH_PROMPT}])
    completion = raw.parse()
    assert raw.headers["x-polyroute-model"] == "alpha"
    assert raw.headers["x-polyroute-request-id"]
    assert completion.choices[0].message.content == "alpha answers"
    assert completion.usage.completion_tokens == 20


def test_streaming_completion_and_preference(client):
    stream = client.chat.completions.create(
        model="polyroute-auto", stream=True,
        messages=[{"role": "user", "content": POETRY_PROMPT}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "".join(f"beta answers {i}|" for i in range(5))
    cheap = client.chat.completions.create(
        model="polyroute-auto", messages=[{"role": "user", "content": POETRY_PROMPT}],
        extra_body={"polyroute": {"lam": 100}})
    assert cheap.choices[0].message.content == "gamma answers"


def test_models_and_errors(client):
    ids = [m.id for m in client.models.list()]
    assert "polyroute-auto" in ids and "alpha" in ids
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert exc.value.code == "model_not_found"
    bad = openai.OpenAI(base_url=str(client.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="polyroute-auto",
                                    messages=[{"role": "user", "content": "x"}])
    bad.close()


def test_backend_failure_surfaces_as_an_api_error(client, standins):
    for s in standins.values():
        s.mode = "500"
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="polyroute-auto",
                                       messages=[{"role": "user", "content": MATH_PROMPT}])
    assert exc.value.status_code == 502

"""The answer cache end to end: the real gateway on 127.0.0.1 in front of the stand-ins."""

from __future__ import annotations

import json

import pytest
from gateway_world import MATH_PROMPT, OTHER_KEY, POETRY_PROMPT

from polyroute.gateway.stages.cache import sse_to_completion
from polyroute.gateway.streaming import completion_to_sse

CACHE_ON = {"cache": {"enabled": True}}


def _calls(standins) -> int:
    return sum(s.calls for s in standins.values())


def _events(raw: bytes) -> list:
    return [json.loads(e.removeprefix("data: ")) for e in raw.decode().split("\n\n")
            if e.strip() and e.strip() != "data: [DONE]"]


@pytest.fixture
def cached(gateway_factory, standins):
    return gateway_factory(CACHE_ON)


def test_a_repeated_question_is_answered_from_the_cache(cached, standins):
    first = cached.chat(MATH_PROMPT)
    assert first.status_code == 200 and "x-polyroute-ended-by" not in first.headers
    assert _calls(standins) == 1
    second = cached.chat(MATH_PROMPT)
    assert second.status_code == 200
    assert _calls(standins) == 1  # no upstream call
    assert second.headers["x-polyroute-ended-by"] == "cache: hit (exact)"
    assert second.headers["x-polyroute-cached-model"] == first.headers["x-polyroute-model"]
    assert second.json()["choices"] == first.json()["choices"]
    cached.flush()
    store = cached.gateway.store
    original = store.get_request(first.headers["x-polyroute-request-id"])
    hit = store.get_request(second.headers["x-polyroute-request-id"])
    assert original.cost > 0 and original.saved == 0
    assert hit.status == "ok" and hit.cost == 0 and hit.chosen is None
    assert hit.saved == pytest.approx(original.cost)
    assert hit.error == "cache: hit (exact)"
    metrics = cached.client().get("/metrics").text
    assert 'polyroute_cache_hits_total{category="default",match="exact"} 1.0' in metrics
    assert 'polyroute_cache_misses_total{category="default"} 1.0' in metrics
    assert "polyroute_cache_saved_dollars_total" in metrics


def test_a_paraphrase_is_a_semantic_hit_and_the_embedding_is_made_once(cached, standins):
    gw = cached.gateway
    encoded = []
    featurizer = gw.pipeline.featurizer
    original_encode = featurizer.encode

    def counting(texts, **kw):
        encoded.extend(texts)
        return original_encode(texts, **kw)

    featurizer.encode = counting
    assert cached.chat(MATH_PROMPT).status_code == 200
    assert encoded == [MATH_PROMPT]  # the lookup's embedding was reused by the decision
    r = cached.chat("  solve the equation 7x + 3 = 24 for x  ")
    assert _calls(standins) == 1
    assert r.headers["x-polyroute-ended-by"].startswith("cache: hit (similarity ")


def test_another_key_misses_unless_the_config_shares(gateway_factory, standins):
    private = gateway_factory(CACHE_ON)
    private.chat(MATH_PROMPT)
    other = private.chat(MATH_PROMPT, key=OTHER_KEY)
    assert "x-polyroute-ended-by" not in other.headers and _calls(standins) == 2

    shared = gateway_factory({"cache": {"enabled": True, "share_across_keys": True},
                              "store": {"path": str(private.config.store.path) + ".shared"}})
    shared.chat(POETRY_PROMPT)
    hit = shared.chat(POETRY_PROMPT, key=OTHER_KEY)
    assert hit.headers["x-polyroute-ended-by"] == "cache: hit (exact)"
    assert _calls(standins) == 3


def test_a_streaming_client_gets_the_cached_answer_as_sse(cached, standins):
    answer = cached.chat(MATH_PROMPT).json()
    r = cached.chat(MATH_PROMPT, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-polyroute-ended-by"] == "cache: hit (exact)"
    assert r.content.endswith(b"data: [DONE]\n\n")
    events = _events(r.content)
    text = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    assert text == answer["choices"][0]["message"]["content"]
    assert events[-1]["usage"] == answer["usage"]
    assert _calls(standins) == 1


def test_different_parameters_or_a_changed_number_miss(cached, standins):
    cached.chat(MATH_PROMPT, temperature=0.2)
    assert "x-polyroute-ended-by" not in cached.chat(MATH_PROMPT, temperature=0.7).headers
    assert cached.chat(MATH_PROMPT, temperature=0.2).headers["x-polyroute-ended-by"] == \
        "cache: hit (exact)"
    near_miss = MATH_PROMPT.replace("24", "25")
    assert "x-polyroute-ended-by" not in cached.chat(near_miss, temperature=0.2).headers
    assert _calls(standins) == 3


def test_errors_and_truncated_answers_are_not_cached(cached, standins, monkeypatch):
    for s in standins.values():
        s.mode = "400"
    assert cached.chat(MATH_PROMPT).status_code == 400
    for s in standins.values():  # the standins fixture does not reset completion_tokens
        s.mode = "ok"
        monkeypatch.setattr(s, "completion_tokens", 50)
    assert cached.chat(MATH_PROMPT, max_tokens=8).json()["choices"][0]["finish_reason"] == \
        "length"
    assert "x-polyroute-ended-by" not in cached.chat(MATH_PROMPT, max_tokens=8).headers
    assert len(cached.gateway.cache) == 0


def test_a_completed_relayed_stream_is_cached_an_interrupted_one_is_not(cached, standins):
    for s in standins.values():
        s.mode = "drop_mid"
    cut = cached.chat(POETRY_PROMPT, stream=True)
    assert cut.status_code == 200 and b"error" in cut.content
    assert len(cached.gateway.cache) == 0
    for s in standins.values():
        s.mode = "ok"
    streamed = cached.chat(POETRY_PROMPT, stream=True)
    text = "".join(c["delta"].get("content") or "" for e in _events(streamed.content)
                   for c in e["choices"])
    calls = _calls(standins)
    again = cached.chat(POETRY_PROMPT, stream=True)
    assert again.headers["x-polyroute-ended-by"] == "cache: hit (exact)"
    assert "".join(c["delta"].get("content") or "" for e in _events(again.content)
                   for c in e["choices"]) == text
    plain = cached.chat(POETRY_PROMPT)  # the same answer, as JSON
    assert plain.json()["choices"][0]["message"]["content"] == text
    assert plain.json()["choices"][0]["finish_reason"] == "stop"
    assert _calls(standins) == calls


def test_sse_to_completion_inverts_completion_to_sse():
    completion = {"id": "c1", "created": 5, "model": "m", "object": "chat.completion",
                  "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                      "role": "assistant", "content": None, "tool_calls": [
                          {"id": "t1", "type": "function",
                           "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}},
                              {"index": 1, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": "hé"}}],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    sse = completion_to_sse(completion, include_usage=True)
    assert sse_to_completion(sse) == completion
    split = (b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant",'
             b'"content":"Hel"}}]}\n\ndata: {"choices":[{"index":0,"delta":{"content":"lo"},'
             b'"finish_reason":"stop"}]}\n\n')
    assert sse_to_completion(split) is None  # never said [DONE]
    assert sse_to_completion(split + b"data: [DONE]\n\n")["choices"][0]["message"] == \
        {"role": "assistant", "content": "Hello"}


def test_cached_answers_survive_a_restart(gateway_factory, standins):
    first = gateway_factory(CACHE_ON)
    first.chat(MATH_PROMPT)
    first.server.stop()
    again = gateway_factory(CACHE_ON)
    assert again.chat(MATH_PROMPT).headers["x-polyroute-ended-by"] == "cache: hit (exact)"
    assert _calls(standins) == 1


def test_without_the_cache_section_nothing_is_cached(gateway, standins):
    assert gateway.gateway.cache is None
    gateway.chat(MATH_PROMPT)
    assert "x-polyroute-ended-by" not in gateway.chat(MATH_PROMPT).headers
    assert _calls(standins) == 2

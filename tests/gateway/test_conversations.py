"""End to end: session pinning with the official ``openai`` client on loopback.

The world (``gateway_world``): alpha answers math, beta poetry. A conversation that opens with a
math question is routed to alpha; its next turns ask for poems, which the router would send to
beta, but the conversation's long system prompt sits in alpha's prompt cache, and at the
profile's λ the estimated gain of moving does not pay for re-reading it cold — so it stays on
alpha, until alpha's breaker opens.
"""

from __future__ import annotations

import json

import openai
import pytest
from gateway_world import KEY, MATH_PROMPT, POETRY_PROMPT, wait_for

from polyroute.cli import main

#: A system prompt of ~2,500 tokens: what the cache holds and a move would re-read.
SYSTEM = "You are a careful assistant. Answer briefly and precisely. " * 170
POEM_TOO = "Compose a haiku about a river in the rain."

CHANGES = {
    "conversations": {"enabled": True, "min_cached_tokens": 0},
    "profiles": {"polyroute-chat": {"lam": 0.5, "models": ["alpha", "beta"]},
                 "polyroute-eager": {"lam": 0.05, "models": ["alpha", "beta"]},
                 "polyroute-quality": {"lam": 0.0, "models": ["alpha", "beta"]}},
    "breaker": {"failure_threshold": 1, "cooldown": 60},
}
CACHED = {"alpha": {"cached_input_price_per_mtok": 0.1},
          "beta": {"cached_input_price_per_mtok": 0.1}}


@pytest.fixture
def pinned_gateway(gateway_factory, standins):
    return gateway_factory(CHANGES, backends=CACHED)


@pytest.fixture
def client(pinned_gateway):
    c = openai.OpenAI(base_url=f"{pinned_gateway.url}/v1", api_key=KEY, max_retries=0,
                      timeout=30)
    yield c
    c.close()


def _turn(client, messages, model="polyroute-chat", **kwargs):
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages,
                                                            **kwargs)
    completion = raw.parse()
    messages.append({"role": "assistant", "content": completion.choices[0].message.content})
    return raw


def _record(gw, raw):
    gw.flush()
    return gw.gateway.store.get_request(raw.headers["x-polyroute-request-id"])


def _logs(gw, raw, capsys) -> dict:
    gw.flush()
    capsys.readouterr()
    assert main(["logs", "--store", str(gw.config.store.path), "--id",
                 raw.headers["x-polyroute-request-id"], "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_three_turns_stay_pinned_then_move_when_the_breaker_opens(pinned_gateway, client,
                                                                  standins, capsys):
    gw = pinned_gateway
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": MATH_PROMPT}]
    first = _turn(client, messages)
    assert first.headers["x-polyroute-model"] == "alpha"
    assert first.headers["x-polyroute-pinned"] == "no"
    conversation = first.headers["x-polyroute-conversation"]

    served = []
    for poem in (POETRY_PROMPT, POEM_TOO):
        messages.append({"role": "user", "content": poem})
        raw = _turn(client, messages)
        served.append(raw)
        assert raw.headers["x-polyroute-conversation"] == conversation
        assert raw.headers["x-polyroute-model"] == "alpha"
        assert raw.headers["x-polyroute-pinned"] == "yes"
        rec = _record(gw, raw)
        assert rec.pinned is True and rec.conversation_id == conversation
        # At λ = 0.5 re-reading the 2,500-token prefix cold costs more than any quality gain
        # could be worth, so the turn was not even embedded.
        assert "no move could pay" in rec.conversation["reason"]
        assert rec.decision_ms is None
    assert [r.headers["x-polyroute-model"] for r in (first, *served)] == ["alpha"] * 3
    assert len(standins["beta"].requests) == 0

    shown = _logs(gw, served[-1], capsys)
    assert shown["pinned"] is True and shown["conversation_id"] == conversation
    assert shown["conversation"]["pinned_model"] == "alpha"
    assert shown["current_pin"]["model"] == "alpha" and shown["current_pin"]["turns"] == 3
    assert main(["logs", "--store", str(gw.config.store.path), "--id",
                 served[-1].headers["x-polyroute-request-id"]]) == 0
    text = capsys.readouterr().out
    assert "Conversation" in text and "pinned model" in text and "alpha after 3 turn(s)" in text
    assert main(["logs", "--store", str(gw.config.store.path)]) == 0
    listing = capsys.readouterr().out
    assert f"{served[-1].headers['x-polyroute-request-id']}  {conversation}  pinned" in listing
    assert f"{first.headers['x-polyroute-request-id']}  {conversation}  not pinned" in listing

    # Alpha fails once (another client's request): its breaker opens (threshold 1).
    standins["alpha"].mode = "500"
    other = client.chat.completions.with_raw_response.create(
        model="polyroute-chat", messages=[{"role": "user", "content": "What is 3 times 4?"}])
    assert other.headers["x-polyroute-model"] == "beta"
    assert gw.gateway.backends["alpha"].available == "breaker open"

    messages.append({"role": "user", "content": "Now a limerick about the moon, please."})
    moved = _turn(client, messages)
    assert moved.headers["x-polyroute-model"] == "beta"
    assert moved.headers["x-polyroute-pinned"] == "no"
    rec = _record(gw, moved)
    assert rec.pinned is False and "alpha is unavailable (breaker open)" in \
        rec.conversation["reason"]
    # The answer that came from beta is the pin now: the next turn stays there.
    standins["alpha"].mode = "ok"
    messages.append({"role": "user", "content": MATH_PROMPT})
    after = _turn(client, messages)
    assert after.headers["x-polyroute-model"] == "beta"
    assert after.headers["x-polyroute-pinned"] == "yes"
    with gw.client() as c:
        metrics = c.get("/metrics").text
    assert 'polyroute_conversation_turns_total{outcome="kept"} 3.0' in metrics
    assert 'polyroute_conversation_turns_total{outcome="routed"} 3.0' in metrics


def test_a_gain_that_beats_the_cache_loss_moves_the_conversation(pinned_gateway, client):
    """At λ = 0.05 the poem's estimated gain on beta is worth more than the cache loss."""
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": MATH_PROMPT}]
    assert _turn(client, messages, model="polyroute-eager").headers["x-polyroute-model"] == \
        "alpha"
    messages.append({"role": "user", "content": POETRY_PROMPT})
    raw = _turn(client, messages, model="polyroute-eager")
    assert raw.headers["x-polyroute-model"] == "beta"
    assert raw.headers["x-polyroute-pinned"] == "no"
    rec = _record(pinned_gateway, raw)
    c = rec.conversation
    assert c["pinned_model"] == "alpha" and c["alternative"] == "beta"
    assert c["reason"].startswith("moved to beta")
    assert c["gain_usd"] > c["cache_loss_usd"] > 0
    assert rec.decision_ms is not None  # the router ranked the turn


def test_without_conversations_the_same_turns_move_to_beta(gateway_factory, standins):
    """The control: the same conversation, pinning off, goes where the router says."""
    gw = gateway_factory({**CHANGES, "conversations": {"enabled": False}}, backends=CACHED)
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0) as client:
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": MATH_PROMPT}]
        assert _turn(client, messages).headers["x-polyroute-model"] == "alpha"
        messages.append({"role": "user", "content": POETRY_PROMPT})
        raw = _turn(client, messages)
    assert raw.headers["x-polyroute-model"] == "beta"
    assert "x-polyroute-pinned" not in raw.headers


def test_a_tool_result_turn_stays_pinned_without_the_encoder(pinned_gateway, client):
    """Even at λ = 0 (any quality gain would move a user turn), a tool's result goes back to the
    model that called the tool, and the router is not asked."""
    gw = pinned_gateway
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": MATH_PROMPT}]
    first = _turn(client, messages, model="polyroute-quality")
    assert first.headers["x-polyroute-model"] == "alpha"
    messages[-1] = {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "lookup_poem", "arguments": '{"topic": "sea"}'}}]}
    messages.append({"role": "tool", "tool_call_id": "call_1",
                     "content": "Write a short poem about the sea at dawn. " * 3})
    raw = _turn(client, messages, model="polyroute-quality")
    assert raw.headers["x-polyroute-model"] == "alpha"
    assert raw.headers["x-polyroute-pinned"] == "yes"
    rec = _record(gw, raw)
    assert rec.conversation["turn"] == "tool" and rec.pinned is True
    assert rec.decision_ms is None  # settled on the pin: nothing was embedded or ranked
    assert [c.model for c in rec.candidates] == ["alpha", "beta"]


def test_explicit_ids_scope_the_pin(pinned_gateway, client):
    """Two conversations with identical messages but different ids keep their own pins; the
    header names the conversation whatever the messages say."""
    messages = [{"role": "user", "content": MATH_PROMPT}]
    one = _turn(client, list(messages), extra_headers={"x-polyroute-conversation": "conv-1"})
    assert one.headers["x-polyroute-conversation"] == "conv-1"
    rec = _record(pinned_gateway, one)
    assert rec.conversation["source"] == "header"
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="polyroute-chat", messages=messages,
                                       metadata={"conversation_id": ""})
    assert "metadata.conversation_id" in str(exc.value)


def test_a_completed_stream_keeps_the_pin(pinned_gateway, client):
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": MATH_PROMPT}]
    stream = client.chat.completions.create(model="polyroute-chat", messages=messages,
                                            stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("alpha answers")
    # The pin is written when the stream's record is (once it has completed): the client has
    # read the last byte a moment before, so wait for that before the next turn.
    store = pinned_gateway.gateway.store
    wait_for(lambda: store.flush() or all(r.status != "in_progress"
                                          for r in store.recent_requests(5)),
             "the stream's record")
    messages += [{"role": "assistant", "content": text},
                 {"role": "user", "content": POETRY_PROMPT}]
    raw = _turn(client, messages)
    assert raw.headers["x-polyroute-model"] == "alpha"
    assert raw.headers["x-polyroute-pinned"] == "yes"

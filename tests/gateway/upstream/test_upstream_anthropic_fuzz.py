"""Property-based fuzzing of the Anthropic translators (hypothesis, bounded and derandomised).

Whatever the upstream sends — JSON of any shape, bytes that are not JSON, a valid event stream
mutated, cut, reordered or cut into any chunks — nothing raises out of a translator but its own
:class:`UpstreamFormatError` (which the forward path turns into a ``bad_response``, the next
candidate), a stream that is not whole is never ``completed``, and what is sent on is always
well-formed Chat Completions SSE. Requests of any shape become a Messages request or an
:class:`UpstreamUnsupported` (the next candidate), never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from anthropic_fixtures import FIXTURES, chunks_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyroute.config import AnthropicConfig
from polyroute.gateway.upstream import UpstreamFormatError, UpstreamUnsupported
from polyroute.gateway.upstream.anthropic import AnthropicDialect
from polyroute.gateway.upstream.anthropic_request import to_messages_request
from polyroute.gateway.upstream.anthropic_response import to_chat_completion, to_openai_error
from polyroute.gateway.upstream.anthropic_stream import AnthropicStreamRelay

_SETTINGS = dict(deadline=None, derandomize=True, database=None, max_examples=150,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_KEYS = st.sampled_from(["type", "text", "id", "name", "input", "content", "index", "delta",
                         "message", "usage", "stop_reason", "partial_json", "thinking",
                         "content_block", "role", "tool_calls", "function", "arguments",
                         "tool_call_id", "image_url", "url", "output_tokens", "x"])
_WORDS = st.sampled_from(["text", "tool_use", "thinking", "message", "message_start",
                          "content_block_start", "content_block_delta", "text_delta",
                          "input_json_delta", "thinking_delta", "message_delta",
                          "message_stop", "error", "ping", "user", "assistant", "tool",
                          "system", "function", "image_url", "end_turn", ""])
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10 ** 6), st.floats(allow_nan=False),
              _WORDS, st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=25)

_EVENTS = [e + b"\n\n" for e in (FIXTURES / "stream_thinking_tool_use.sse").read_bytes()
           .split(b"\n\n") if e.strip()]


def _mutate(event: bytes, value: Any) -> bytes:
    """The event with one field of its data replaced by ``value``."""
    head, _, data = event.partition(b"data: ")
    obj = json.loads(data)
    key = sorted(obj)[len(json.dumps(value)) % len(obj)]
    obj[key] = value
    return head + b"data: " + json.dumps(obj).encode() + b"\n\n"


_junk = st.one_of(
    st.builds(_mutate, st.sampled_from(_EVENTS), json_values),
    st.builds(lambda v: b"data: " + json.dumps(v).encode() + b"\n\n", json_values),
    st.binary(max_size=40),
)


def _perturb(ops: list[tuple[int, int, bytes]]) -> bytes:
    """The recorded stream with each op applied: 0 drop an event, 1 repeat it, 2 replace it
    with junk, 3 insert junk before it."""
    events = list(_EVENTS)
    for op, at, junk in ops:
        if not events:
            break
        i = at % len(events)
        if op == 0:
            del events[i]
        elif op == 1:
            events.insert(i, events[i])
        elif op == 2:
            events[i] = junk
        elif op == 3:
            events.insert(i, junk)
    return b"".join(events)


#: Mostly near-valid streams (a few edits of the recorded one), some wholly made up.
event_streams = st.one_of(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 100), _junk), max_size=3)
    .map(_perturb),
    st.lists(st.one_of(st.sampled_from(_EVENTS), _junk), max_size=24).map(b"".join),
)


def _check_output(relay: AnthropicStreamRelay, out: bytes) -> None:
    chunks, done = chunks_of(out)  # raises if anything sent is not JSON
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk" and isinstance(chunk["choices"], list)
    assert done == relay.completed  # [DONE] exactly when the stream completed
    if relay.completed:
        assert relay.error is None and relay.stopped


@settings(**_SETTINGS)
@given(json_values)
def test_any_json_answer_is_a_completion_or_a_format_error(value):
    try:
        out = to_chat_completion(value, keep_thinking=True)
    except UpstreamFormatError:
        return
    assert isinstance(out["choices"][0]["message"], dict)
    json.dumps(out)


@settings(**_SETTINGS)
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_answer_bytes_are_a_completion_or_a_format_error(content):
    dialect = AnthropicDialect(AnthropicConfig())
    try:
        out = dialect.answer(content)
    except UpstreamFormatError:
        return
    assert isinstance(json.loads(out)["choices"], list)
    assert isinstance(dialect.error(content), bytes)
    assert isinstance(to_openai_error(content), bytes)


@settings(**_SETTINGS)
@given(event_streams, st.integers(1, 300), st.booleans())
def test_any_stream_is_translated_or_fails_without_raising(stream, size, keep_thinking):
    relay = AnthropicStreamRelay(include_usage=True, keep_thinking=keep_thinking,
                                 max_event_bytes=4096)
    out = b"".join(relay.feed(stream[i:i + size]) for i in range(0, len(stream), size))
    out += relay.finish()
    _check_output(relay, out)


@settings(**_SETTINGS)
@given(st.integers(0, len(_EVENTS) - 1), st.integers(1, 50))
def test_a_stream_cut_anywhere_before_message_stop_is_not_complete(keep, size):
    stream = b"".join(_EVENTS[:keep])  # message_stop is the last event
    relay = AnthropicStreamRelay()
    out = b"".join(relay.feed(stream[i:i + size]) for i in range(0, len(stream), size))
    out += relay.finish()
    assert not relay.completed
    _check_output(relay, out)


messages = st.lists(st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool",
                                                    "developer"]),
                           "content": json_values},
                          optional={"tool_calls": json_values, "tool_call_id": json_values}),
    json_values), max_size=6)


@settings(**_SETTINGS)
@given(messages, st.dictionaries(st.sampled_from(
    ["tools", "tool_choice", "stop", "temperature", "top_p", "max_tokens", "reasoning_effort",
     "n", "response_format", "parallel_tool_calls", "user"]), json_values, max_size=4))
def test_any_request_is_translated_or_refused(msgs, fields):
    body = {"model": "m", "messages": msgs, **fields}
    try:
        out = to_messages_request(body, model="m", stream=False, settings=AnthropicConfig())
    except UpstreamUnsupported:
        return
    json.dumps(out)
    roles = [t["role"] for t in out["messages"]]
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))  # turns alternate

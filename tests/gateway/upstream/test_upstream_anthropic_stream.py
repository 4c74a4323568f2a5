"""Anthropic Messages stream → Chat Completions chunks: the recorded streams, whatever the
chunking, and the streams that must not count as a success."""

from __future__ import annotations

import json

import pytest
from anthropic_fixtures import FIXTURES, add_up, chunks_of, load

from polyroute.gateway.upstream.anthropic_stream import AnthropicStreamRelay

STREAMS = ["stream_text", "stream_thinking_tool_use"]


def run(relay: AnthropicStreamRelay, data: bytes, size: int) -> bytes:
    out = [relay.feed(data[i:i + size]) for i in range(0, len(data), size)]
    return b"".join(out) + relay.finish()


def ev(obj: dict, name: str | None = None) -> bytes:
    head = f"event: {name or obj['type']}\n".encode()
    return head + b"data: " + json.dumps(obj).encode() + b"\n\n"


START = ev({"type": "message_start", "message": {"id": "msg_1", "model": "m", "content": [],
                                                 "usage": {"input_tokens": 3}}})
TEXT_START = ev({"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}})
DELTA = ev({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "hi"}})
STOP_REASON = ev({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                  "usage": {"output_tokens": 2}})
STOP = ev({"type": "message_stop"})


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("size", [1, 13, 100_000])
def test_recorded_streams(name, size):
    relay = AnthropicStreamRelay(include_usage=True)
    out = run(relay, (FIXTURES / f"{name}.sse").read_bytes(), size)
    chunks, done = chunks_of(out)
    expected = load(f"{name}.expected.json")
    assert done and relay.completed and relay.error is None
    assert add_up(chunks) == expected
    assert relay.usage == expected["usage"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == []  # the usage chunk is last, then [DONE]


def test_crlf_line_endings():
    data = (FIXTURES / "stream_text.sse").read_bytes().replace(b"\n", b"\r\n")
    relay = AnthropicStreamRelay()
    chunks, done = chunks_of(run(relay, data, 7))
    assert done and relay.completed and add_up(chunks)["text"] == "Hello!"


def test_usage_chunk_only_when_the_client_asked_but_usage_always_known():
    data = (FIXTURES / "stream_text.sse").read_bytes()
    for strip, include in [(True, False), (False, False), (True, True), (False, True)]:
        relay = AnthropicStreamRelay(strip_usage=strip, include_usage=include)
        chunks, _ = chunks_of(run(relay, data, 50))
        assert any(not c["choices"] for c in chunks) == include
        assert relay.usage["completion_tokens"] == 15


def test_thinking_can_be_dropped():
    relay = AnthropicStreamRelay(keep_thinking=False)
    chunks, _ = chunks_of(run(relay, (FIXTURES / "stream_thinking_tool_use.sse").read_bytes(),
                              64))
    assert add_up(chunks)["reasoning"] == "" and relay.completed
    assert relay.events == 16  # data events after message_start, thinking ones included


def test_the_role_chunk_waits_for_the_next_event():
    relay = AnthropicStreamRelay()
    assert relay.feed(START) == b"" and relay.events == 0
    assert relay.feed(b"event: ping\ndata: {\"type\": \"ping\"}\n\n") == b": ping\n\n"
    out = relay.feed(TEXT_START)
    assert relay.events == 1 and chunks_of(out)[0][0]["choices"][0]["delta"]["role"] == \
        "assistant"


@pytest.mark.parametrize("stream", [
    START + TEXT_START + DELTA,  # cut mid-answer
    START + TEXT_START + DELTA + STOP_REASON,  # cut before message_stop
    START + TEXT_START + DELTA + STOP_REASON + STOP[:-10],  # cut inside message_stop
])
def test_a_truncated_stream_is_not_complete(stream):
    relay = AnthropicStreamRelay()
    chunks, done = chunks_of(run(relay, stream, 9))
    assert not relay.completed and not done
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


@pytest.mark.parametrize("stream", [
    b"data: not json\n\n",
    b"data: [1, 2]\n\n",
    TEXT_START + STOP,  # no message_start
    START + DELTA,  # a delta for a block that never started
    START + ev({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "f"}}) + DELTA,
    START + TEXT_START + TEXT_START,  # one index started twice
    (FIXTURES / "stream_overloaded.sse").read_bytes(),
])
def test_garbage_or_an_error_event_is_an_error(stream):
    relay = AnthropicStreamRelay()
    out = run(relay, stream + STOP_REASON + STOP, 11)
    assert relay.error is not None and not relay.completed
    assert not chunks_of(out)[1]  # no [DONE]


def test_an_overloaded_error_after_message_start_sends_nothing():
    # So the forward path can still fall back: nothing counted, nothing to send.
    relay = AnthropicStreamRelay()
    out = relay.feed((FIXTURES / "stream_overloaded.sse").read_bytes())
    assert out == b"" and relay.events == 0 and relay.error == "the backend sent an error event"


def test_an_oversized_event_is_an_error():
    relay = AnthropicStreamRelay(max_event_bytes=1024)
    relay.feed(START + b"data: " + b"x" * 2000)
    assert relay.error is not None and "max_event_bytes" in relay.error


def test_the_deltas_of_an_untranslated_block_are_skipped():
    server_tool = ev({"type": "content_block_start", "index": 1, "content_block": {
        "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}})
    its_input = ev({"type": "content_block_delta", "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": "{\"q\": 1}"}})
    relay = AnthropicStreamRelay()
    chunks, done = chunks_of(run(relay, START + TEXT_START + DELTA + server_tool + its_input
                                 + STOP_REASON + STOP, 30))
    assert done and add_up(chunks)["tool_calls"] == [] and add_up(chunks)["text"] == "hi"


def test_unknown_event_and_delta_types_are_skipped():
    new = ev({"type": "content_block_delta", "index": 0,
              "delta": {"type": "citations_delta", "citation": {}}})
    relay = AnthropicStreamRelay()
    chunks, done = chunks_of(run(relay, START + TEXT_START + new + ev({"type": "brand_new"})
                                 + DELTA + STOP_REASON + STOP, 20))
    assert done and relay.completed and add_up(chunks)["text"] == "hi"

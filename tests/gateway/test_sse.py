"""The SSE relay: event boundaries, usage capture and removal of the gateway's own usage chunk."""

from __future__ import annotations

import json

import pytest

from polyroute.gateway.streaming import SSERelay


def ev(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


CONTENT = [ev({"choices": [{"delta": {"content": f"t{i}"}}]}) for i in range(3)]
USAGE = ev({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
DONE = b"data: [DONE]\n\n"


def relay_all(relay: SSERelay, pieces: list[bytes]) -> list[bytes]:
    out = [relay.feed(p) for p in pieces]
    out.append(relay.finish())
    return out


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_forwards_whole_events_whatever_the_chunking(size):
    stream = b"".join(CONTENT) + DONE
    pieces = [stream[i:i + size] for i in range(0, len(stream), size)]
    relay = SSERelay()
    out = relay_all(relay, pieces)
    assert b"".join(out) == stream
    for piece in out:  # nothing forwarded ends inside an event
        assert piece == b"" or piece.endswith(b"\n\n")
    assert relay.done


def test_each_complete_event_is_forwarded_at_once():
    relay = SSERelay()
    assert relay.feed(CONTENT[0]) == CONTENT[0]
    assert relay.feed(CONTENT[1][:5]) == b""
    assert relay.feed(CONTENT[1][5:]) == CONTENT[1]


def test_usage_is_captured_and_the_injected_chunk_dropped():
    relay = SSERelay(strip_usage=True)
    out = b"".join(relay_all(relay, [*CONTENT, USAGE, DONE]))
    assert out == b"".join(CONTENT) + DONE
    assert relay.usage == {"prompt_tokens": 3, "completion_tokens": 4}


def test_usage_kept_when_the_client_asked_for_it():
    relay = SSERelay(strip_usage=False)
    out = b"".join(relay_all(relay, [*CONTENT, USAGE + DONE]))
    assert out == b"".join(CONTENT) + USAGE + DONE
    assert relay.usage["completion_tokens"] == 4


def test_usage_on_a_content_chunk_is_never_dropped():
    chunk = ev({"choices": [{"delta": {"content": "x"}}], "usage": {"completion_tokens": 1}})
    relay = SSERelay(strip_usage=True)
    assert b"".join(relay_all(relay, [chunk, DONE])) == chunk + DONE
    assert relay.usage == {"completion_tokens": 1}


def test_crlf_events_and_a_trailing_partial_event():
    crlf = b'data: {"choices": []}\r\n\r\n'
    relay = SSERelay()
    assert relay.feed(crlf + b"data: tail") == crlf
    assert relay.finish() == b"data: tail"

"""The SSE relay judges what it cuts: completion, malformed events, size cap, linear work."""

from __future__ import annotations

import json

import pytest

from polyroute.gateway import sse
from polyroute.gateway.streaming import SSERelay


def ev(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chunk(content: str | None = "x", finish: str | None = None, index: int = 0) -> bytes:
    delta = {"content": content} if content is not None else {}
    return ev({"choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


DONE = b"data: [DONE]\n\n"


def run(relay: SSERelay, *pieces: bytes) -> bytes:
    return b"".join(relay.feed(p) for p in pieces) + relay.finish()


def test_done_completes_a_stream():
    relay = SSERelay()
    run(relay, chunk(), DONE)
    assert relay.completed and relay.error is None


def test_a_finish_reason_in_every_choice_completes_a_stream():
    relay = SSERelay()
    run(relay, chunk(index=0), chunk(index=1), chunk(None, "stop", 0))
    assert not relay.completed  # choice 1 has not finished
    relay = SSERelay()
    run(relay, chunk(index=0), chunk(index=1), chunk(None, "stop", 0), chunk(None, "length", 1))
    assert relay.completed


def test_a_truncated_stream_is_not_complete():
    relay = SSERelay()
    out = run(relay, chunk(), chunk())
    assert out == chunk() * 2 and not relay.completed and relay.error is None


@pytest.mark.parametrize("bad", [b"data: not json\n\n", b'data: {"id": 1}\n\n',
                                 b'data: {"choices": null}\n\n', b'data: {"choices": 5}\n\n',
                                 b"data: [1, 2]\n\n",
                                 b'data: {"error": {"message": "overloaded"}}\n\n'])
def test_a_malformed_event_stops_the_relay(bad):
    relay = SSERelay()
    out = run(relay, chunk() + bad + chunk(), DONE)
    assert out == chunk()  # the events before it only; nothing at or after it
    assert relay.error is not None and not relay.completed


def test_the_usage_only_chunk_and_comments_are_valid():
    relay = SSERelay(strip_usage=True)
    usage = ev({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    out = run(relay, b": keep-alive\n\n", chunk(None, "stop"), usage, DONE)
    assert relay.error is None and relay.completed
    assert out == b": keep-alive\n\n" + chunk(None, "stop") + DONE
    assert relay.usage == {"prompt_tokens": 1, "completion_tokens": 2}


def test_comments_are_not_data_events():
    relay = SSERelay()
    relay.feed(b": keep-alive\n\n: again\n\n")
    assert relay.events == 0
    relay.feed(chunk())
    assert relay.events == 1


def test_an_unterminated_last_event_is_judged_too():
    relay = SSERelay()
    run(relay, chunk(), b'data: {"choices": [{"delta"')
    assert relay.error is not None
    relay = SSERelay()
    run(relay, chunk(), b"data: [DONE]")
    assert relay.completed and relay.error is None


def test_an_event_over_the_cap_is_an_error_and_is_not_buffered_further():
    relay = SSERelay(max_event_bytes=1000)
    assert relay.feed(chunk()) == chunk()
    for _ in range(5):
        assert relay.feed(b"data: " + b"x" * 600) == b""
    assert relay.error is not None and "max_event_bytes" in relay.error
    assert len(relay._pending) <= 1000 + 606


def test_work_is_linear_in_the_bytes_received(monkeypatch):
    """Each byte is searched for an event end once (plus a 3-byte overlap per chunk), however
    long the event: a 1 MB event in 1 KB pieces must not cost a rescan of all before it."""
    searched = []
    pattern = sse._EVENT_END

    class Counting:
        def search(self, data, pos=0):
            searched.append(len(data) - pos)
            return pattern.search(data, pos)

    monkeypatch.setattr(sse, "_EVENT_END", Counting())
    relay = SSERelay(max_event_bytes=10_000_000)
    piece = b"x" * 1024
    relay.feed(b"data: ")
    for _ in range(1024):
        relay.feed(piece)
    relay.feed(b"\n\n")
    assert relay.events == 1 and relay.error == "an event is not JSON"  # cut at its real end
    assert sum(searched) <= 1024 * (1024 + 4) + 100

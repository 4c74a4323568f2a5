"""Cut an upstream byte stream into server-sent events and judge them as they pass.

Why judge here: a stream is only a success when it completed — ``[DONE]`` arrived, or every
choice it mentioned carried a ``finish_reason`` — and every event it sent was a chat completion
chunk (JSON with a list ``choices``; the usage-only chunk has ``choices: []``). The relay already
cuts events to forward whole ones, so parsing each ``data:`` payload once costs one
JSON parse per event and no second pass. A malformed event stops the relay: neither it nor
anything after it is forwarded.

Work is linear in the bytes received: pending bytes grow in a ``bytearray`` (no copy of the whole
event per chunk) and each chunk is searched for an event end from three bytes before it (the
longest terminator, ``\\r\\n\\r\\n``, may straddle two chunks), never from the event's start. An
event longer than ``max_event_bytes`` is an error as soon as the pending bytes pass the cap.
No imports from the rest of the gateway but its JSON reader (:mod:`fastjson`): :mod:`forward`
uses it to read a stream's first event before committing to a backend, :mod:`streaming` to relay
the rest.

The cutting is :class:`SSECutter`, apart from what an event becomes: :class:`SSERelay` judges
Chat Completions chunks and forwards them as they are, an upstream dialect's relay (see
:mod:`~polyroute.gateway.upstream`) translates another API's events into such chunks.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from polyroute.gateway import fastjson

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSECutter", "SSERelay", "data_lines"]

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE = re.compile(rb"\r\n|\r|\n")
#: Bytes of the previous pending data searched again for a terminator that straddles chunks.
_OVERLAP = 3

DEFAULT_MAX_EVENT_BYTES = 4_000_000

_KEEP, _DROP, _BAD = "keep", "drop", "bad"


def data_lines(event: bytes) -> list[bytes]:
    """The values of an event's ``data:`` lines (none for a comment or a bare field)."""
    return [line[5:].removeprefix(b" ") for line in _LINE.split(event)
            if line.startswith(b"data:")]


class SSECutter(ABC):
    """Cuts a byte stream at SSE event boundaries; :meth:`_event` says what each becomes.

    ``feed`` returns the bytes to forward now; once ``error`` is set (by :meth:`_event`, or for
    an event longer than ``max_event_bytes``) nothing more is forwarded, not even the bytes of
    the event that set it.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.error: str | None = None
        self._pending = bytearray()
        self._scan = 0

    @abstractmethod
    def _event(self, event: bytes, end: bytes) -> bytes:
        """The bytes to forward for one ``event`` (without its terminator ``end``, which is
        empty for the unterminated rest at :meth:`finish`); set ``error`` to stop."""

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to forward now: every complete valid event so far, none of a partial one."""
        if self.error is not None:
            return b""
        pending = self._pending
        pending += chunk
        out = []
        start = 0
        pos = self._scan
        while True:
            m = _EVENT_END.search(pending, pos)
            if m is None:
                break
            piece = self._event(bytes(pending[start:m.start()]), m.group())
            if self.error is not None:
                self._pending = bytearray()
                return b"".join(out)
            out.append(piece)
            start = pos = m.end()
        if start:
            del pending[:start]
        self._scan = max(0, len(pending) - _OVERLAP)
        if len(pending) > self.max_event_bytes:
            self.error = (f"an event exceeds max_event_bytes ({self.max_event_bytes} bytes) "
                          f"without ending")
            self._pending = bytearray()
        return b"".join(out)

    def finish(self) -> bytes:
        """What the unterminated rest becomes when the upstream ends, judged like an event.

        Forward it only while ``error`` is None: if the rest is malformed (a stream cut inside
        an event), ``error`` says so and the bytes are only returned for the caller to see.
        """
        rest, self._pending, self._scan = bytes(self._pending), bytearray(), 0
        if not rest or self.error is not None:
            return b""
        return self._event(rest, b"")


class SSERelay(SSECutter):
    """Cuts a Chat Completions stream into events; watches usage, completion and bad events.

    ``feed`` returns the bytes to forward now (complete, valid events); after it, ``error`` says
    why the stream cannot go on (then nothing more is forwarded), ``completed`` whether the
    stream has said all it will, ``events`` how many data events arrived (comment lines such as
    ``: keep-alive`` are not data and do not count).
    """

    def __init__(self, strip_usage: bool = False,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self.strip_usage = strip_usage
        self.usage: dict[str, Any] | None = None
        #: ``[DONE]`` was seen.
        self.done = False
        self.events = 0
        #: Per choice index seen: has it carried a finish_reason?
        self._finished: dict[Any, bool] = {}

    @property
    def completed(self) -> bool:
        """The upstream said it is done: ``[DONE]``, or a finish_reason for every choice."""
        return self.error is None and (self.done or (bool(self._finished)
                                                     and all(self._finished.values())))

    def _event(self, event: bytes, end: bytes) -> bytes:
        # A bad event's bytes are returned too: feed() drops them, finish() shows them.
        return b"" if self._judge(event) is _DROP else event + end

    # -- one event -------------------------------------------------------------------------------
    def _judge(self, event: bytes) -> str:
        """Inspect one event: forward it (_KEEP), drop our own usage chunk (_DROP), or _BAD
        (``error`` says why)."""
        data = data_lines(event)
        if not data:  # a comment or a bare field such as ``retry:``: nothing to judge
            return _KEEP
        self.events += 1
        payload = b"\n".join(data)
        if payload.strip() == b"[DONE]":
            self.done = True
            return _KEEP
        try:
            obj = fastjson.loads(payload)
        except ValueError:
            return self._bad("an event is not JSON")
        if not isinstance(obj, dict):
            return self._bad("an event is not a JSON object")
        if "error" in obj:
            return self._bad("the backend sent an error event")
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return self._bad("an event has no list 'choices'")
        for i, choice in enumerate(choices):
            if not isinstance(choice, dict):
                return self._bad("an event's choice is not an object")
            index = choice.get("index", i)
            key = index if isinstance(index, int | str) else i
            self._finished[key] = self._finished.get(key, False) or \
                choice.get("finish_reason") is not None
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
            if self.strip_usage and not choices:
                return _DROP
        return _KEEP

    def _bad(self, why: str) -> str:
        self.error = why
        return _BAD

"""An Anthropic Messages stream → a Chat Completions stream, judged as it is translated.

Anthropic streams ``message_start``, then per content block ``content_block_start``, its
``content_block_delta``\\ s (``text_delta``, ``input_json_delta`` for a tool's input,
``thinking_delta``, ``signature_delta``) and ``content_block_stop``, then ``message_delta``
(the ``stop_reason`` and the output token count) and ``message_stop``; ``ping`` events may come
anywhere and an ``error`` event ends a broken stream. :class:`AnthropicStreamRelay` has the
interface of :class:`~polyroute.gateway.sse.SSERelay`, so the forward path and the streaming
relay use it unchanged, and it turns each event into the chunk a Chat Completions client
expects: the role at ``message_start``, ``content`` per text delta, ``tool_calls`` (the id and
name first, then the arguments' JSON in pieces) per tool block, ``reasoning_content`` per
thinking delta (or nothing: the backend's ``anthropic.thinking``).

Why the finish chunk waits for ``message_stop``: a stream is a success only when it completed,
and Anthropic's stream is complete only at ``message_stop``. So the ``finish_reason`` chunk,
the usage chunk (when the client asked for usage) and ``[DONE]`` are sent together then; a
stream cut before it — after its ``message_delta`` or anywhere else — is not complete.

Why ``events`` counts Anthropic's data events, not the chunks made of them: the streaming relay's
idle timeout restarts at each data event, and a thinking block that is dropped makes no chunk for
a long time while the upstream is busy sending. ``message_start`` must come first but is not
counted, and its role chunk is held back until the next event: the forward path commits to a
backend at the first counted event, and Anthropic reports overload as an ``error`` event right
after ``message_start`` — held back, that still falls back to the next candidate. Anything but
``message_start`` first, an event that is not a JSON object, a delta for a block that never
started, or an ``error`` event is ``error`` (a failure: before the first byte, the next candidate
is tried). Unknown event and delta types are skipped,
as the API reference asks of clients. ``ping`` becomes an SSE comment, which keeps the client's
connection warm and is not a data event.

``usage`` is known from ``message_start`` and ``message_delta`` and is set at ``message_stop``
whatever the client asked, so a streamed call is always charged its real tokens.
"""

from __future__ import annotations

import json
import time
from typing import Any

from polyroute.gateway.sse import DEFAULT_MAX_EVENT_BYTES, SSECutter, data_lines
from polyroute.gateway.upstream.anthropic_response import finish_reason, usage_of

__all__ = ["AnthropicStreamRelay"]

_PING = b": ping\n\n"
_DONE = b"data: [DONE]\n\n"
#: Content block kinds, by the index Anthropic gives them.
_TEXT, _THINKING, _OTHER = "text", "thinking", "other"


class AnthropicStreamRelay(SSECutter):
    """Reads Anthropic SSE bytes, returns Chat Completions SSE bytes (see the module)."""

    def __init__(self, *, strip_usage: bool = False, include_usage: bool = False,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 keep_thinking: bool = True) -> None:
        super().__init__(max_event_bytes)
        #: Send a usage chunk: the client asked for one. (``strip_usage`` is for the interface:
        #: Anthropic always reports usage, so the gateway never asks for a chunk of its own.)
        self._send_usage = include_usage
        self._keep_thinking = keep_thinking
        self.usage: dict[str, Any] | None = None
        self.events = 0
        #: ``message_stop`` arrived.
        self.stopped = False
        self._base: dict[str, Any] = {}
        #: Block index → its kind, or the index of its tool call among the tool calls.
        self._blocks: dict[int, str | int] = {}
        self._tools = 0
        self._raw_usage: dict[str, int] = {}
        self._stop_reason: Any = None
        #: The role chunk of ``message_start``, sent with the next event's (see the module).
        self._held = b""

    @property
    def completed(self) -> bool:
        """``message_stop`` arrived and nothing was wrong before it."""
        return self.stopped and self.error is None

    def _event(self, event: bytes, end: bytes) -> bytes:
        data = data_lines(event)
        if not data or self.stopped:  # a comment, or anything after the end: nothing to send
            return b""
        try:
            obj = json.loads(b"\n".join(data))
        except ValueError:
            return self._bad("an event is not JSON")
        if not isinstance(obj, dict):
            return self._bad("an event is not a JSON object")
        kind = obj.get("type")
        if kind == "ping":
            return _PING
        if kind == "error":
            return self._bad("the backend sent an error event")
        if not self._base:
            if kind != "message_start":
                return self._bad("the stream did not begin with message_start")
            self._held = self._start(obj.get("message"))
            return b""
        self.events += 1
        if kind == "content_block_start":
            out = self._block_start(obj)
        elif kind == "content_block_delta":
            out = self._delta(obj)
        elif kind == "message_delta":
            out = self._message_delta(obj)
        elif kind == "message_stop":
            out = self._stop()
        else:  # content_block_stop, or a type added after this was written
            out = b""
        if self._held:
            out, self._held = self._held + out, b""
        return out

    # -- events --------------------------------------------------------------------------------
    def _start(self, message: Any) -> bytes:
        if not isinstance(message, dict):
            return self._bad("message_start has no message object")
        self._base = {"id": message["id"] if isinstance(message.get("id"), str) else "msg",
                      "object": "chat.completion.chunk", "created": int(time.time()),
                      "model": message["model"] if isinstance(message.get("model"), str)
                      else None}
        self._merge_usage(message.get("usage"))
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, obj: dict[str, Any]) -> bytes:
        index, block = obj.get("index"), obj.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict) or index in self._blocks:
            return self._bad("content_block_start has no new index and block")
        kind = block.get("type")
        if kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                return self._bad("a tool_use block has no string id and name")
            self._blocks[index] = self._tools
            self._tools += 1
            return self._chunk({"tool_calls": [{
                "index": self._blocks[index], "id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": ""}}]})
        if kind == "text":
            self._blocks[index] = _TEXT
            text = block.get("text")
            return self._chunk({"content": text}) if isinstance(text, str) and text else b""
        if kind == "thinking":
            self._blocks[index] = _THINKING
            text = block.get("thinking")
            return self._thinking(text) if isinstance(text, str) and text else b""
        self._blocks[index] = _OTHER
        return b""

    def _delta(self, obj: dict[str, Any]) -> bytes:
        index, delta = obj.get("index"), obj.get("delta")
        if not isinstance(index, int) or index not in self._blocks or not isinstance(delta,
                                                                                      dict):
            return self._bad("a content_block_delta for a block that did not start")
        block, kind = self._blocks[index], delta.get("type")
        if block == _OTHER:  # a block kind not translated (a server tool's, say): its deltas too
            return b""
        if kind == "text_delta":
            if block != _TEXT or not isinstance(delta.get("text"), str):
                return self._bad("a text_delta that does not fit its block")
            return self._chunk({"content": delta["text"]})
        if kind == "input_json_delta":
            if not isinstance(block, int) or not isinstance(delta.get("partial_json"), str):
                return self._bad("an input_json_delta that does not fit its block")
            return self._chunk({"tool_calls": [{"index": block, "function": {
                "arguments": delta["partial_json"]}}]})
        if kind == "thinking_delta":
            if block != _THINKING or not isinstance(delta.get("thinking"), str):
                return self._bad("a thinking_delta that does not fit its block")
            return self._thinking(delta["thinking"])
        return b""  # signature_delta, citations_delta, or a newer kind

    def _message_delta(self, obj: dict[str, Any]) -> bytes:
        delta = obj.get("delta")
        if isinstance(delta, dict) and "stop_reason" in delta:
            self._stop_reason = delta["stop_reason"]
        self._merge_usage(obj.get("usage"))
        return b""

    def _stop(self) -> bytes:
        self.stopped = True
        self.usage = usage_of(self._raw_usage)
        out = [self._chunk({}, finish_reason(self._stop_reason))]
        if self._send_usage:
            out.append(self._encode({**self._base, "choices": [], "usage": self.usage}))
        out.append(_DONE)
        return b"".join(out)

    # -- helpers -------------------------------------------------------------------------------
    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._raw_usage.update({k: v for k, v in usage.items()
                                    if isinstance(v, int) and not isinstance(v, bool)})

    def _thinking(self, text: str) -> bytes:
        return self._chunk({"reasoning_content": text}) if self._keep_thinking else b""

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._encode({**self._base, "choices": [{"index": 0, "delta": delta,
                                                        "finish_reason": finish}]})

    @staticmethod
    def _encode(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj, ensure_ascii=False,
                                      separators=(",", ":")).encode() + b"\n\n"

    def _bad(self, why: str) -> bytes:
        self.error = why
        return b""

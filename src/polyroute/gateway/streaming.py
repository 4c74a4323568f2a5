"""Streaming pass-through: upstream server-sent events reach the client as they arrive.

Nothing is buffered beyond the event being received: bytes are forwarded as soon as they complete
an SSE event (a client cannot use a partial event anyway). The :class:`SSERelay` judges each
event as it cuts it (see :mod:`polyroute.gateway.sse`): usage is captured to charge real tokens,
the usage-only chunk the gateway asked for itself is dropped, and a stream is a success only if
it completed with well-formed events. One that breaks — malformed or oversized event, cut short,
transport error, or no data event within the backend's ``timeout`` (comment lines do not count:
they would keep the client's read timeout from ever firing) — ends with an OpenAI-shaped error event
and counts as a failure of the backend.

The exception is a multi-call profile (cascade, top-k): its answer is only known once every call
is complete, so it is sent as one buffered stream made by :func:`completion_to_sse`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from polyroute.gateway.apis.base import StreamShaper
from polyroute.gateway.errors import error_body
from polyroute.gateway.forward import OpenStream
from polyroute.gateway.sse import SSERelay
from polyroute.gateway.upstream import StreamRelay
from polyroute.gateway.upstream_http import UpstreamHTTPError, UpstreamTimeout

__all__ = ["RelayResponse", "SSERelay", "StreamResult", "completion_to_sse"]

logger = logging.getLogger(__name__)


#: Message fields other than ``role`` / ``content`` that a stream carries in its delta.
_DELTA_EXTRAS = ("tool_calls", "function_call", "refusal")


def completion_to_sse(completion: dict[str, Any], *, include_usage: bool) -> bytes:
    """A complete chat completion re-sent as an OpenAI-style SSE stream, ``[DONE]`` included.

    Why: a streamed request to a cascade or top-k profile cannot be relayed as it arrives — a
    cascade must see the whole cheap answer before deciding whether to escalate, and a merge
    needs every member's answer — so the gateway runs the calls non-streamed and replays the
    final answer in this form. Nothing is incremental: the client's time to first token is the
    whole cascade's (or set's) time.

    Per choice: one chunk whose delta holds the message (``role``, ``content`` and any
    ``tool_calls`` — each given its ``index`` as in a real stream — ``function_call`` or
    ``refusal``), then one with its ``finish_reason``. A usage-only chunk (``choices: []``) follows
    when ``include_usage`` is set and the completion reports usage (there is nothing to say when
    it does not). ``id``, ``created``, ``model`` and ``system_fingerprint`` are kept.
    """
    base: dict[str, Any] = {k: completion[k] for k in ("id", "created", "model",
                                                        "system_fingerprint")
                            if k in completion}
    base["object"] = "chat.completion.chunk"
    choices = [c for c in completion.get("choices") or [] if isinstance(c, dict)]
    chunks: list[dict[str, Any]] = []
    for i, choice in enumerate(choices):
        index = choice.get("index", i)
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant"),
                                 "content": message.get("content")}
        for key in _DELTA_EXTRAS:
            if message.get(key) is not None:
                delta[key] = message[key]
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [{"index": j, **call} if isinstance(call, dict) else call
                                   for j, call in enumerate(delta["tool_calls"])]
        first: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": None}
        if "logprobs" in choice:
            first["logprobs"] = choice["logprobs"]
        chunks.append({**base, "choices": [first]})
        chunks.append({**base, "choices": [{"index": index, "delta": {},
                                            "finish_reason": choice.get("finish_reason")}]})
    usage = completion.get("usage")
    if include_usage and isinstance(usage, dict):
        chunks.append({**base, "choices": [], "usage": usage})
    events = [b"data: " + json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode()
              + b"\n\n" for c in chunks]
    return b"".join(events) + b"data: [DONE]\n\n"


@dataclass
class StreamResult:
    """How a relayed stream ended; handed to the ``on_done`` callback exactly once."""

    completed: bool = False
    client_closed: bool = False
    #: Ended by the gateway's shutdown deadline (the client got an error event).
    cut: bool = False
    error: str | None = None
    usage: dict[str, Any] | None = None
    ttfb_ms: float | None = None
    ended: float = 0.0


class RelayResponse(Response):
    """An ASGI response that pumps an :class:`OpenStream` to the client.

    It watches for the client leaving (then stops reading upstream at once), closes the upstream
    and frees the backend slot however it ends, and reports the ending to ``on_done`` — also when
    the task is cancelled — so that the request is always recorded.
    """

    def __init__(self, stream: OpenStream, headers: dict[str, str], started: float,
                 on_done: Callable[[StreamResult], None], *,
                 cut: anyio.Event | None = None) -> None:
        self.stream = stream
        #: Set at the shutdown deadline: the stream ends with a ``gateway_shutdown`` error event.
        self._cut = cut
        self.status_code = 200
        self.background = None
        self._started = started
        self._on_done = on_done
        #: Called with the bytes of each batch of events once sent to the client, and with how
        #: the stream ended after it is recorded: a later stage watches a stream this way (the
        #: cache keeps a completed one).
        self.taps: list[Callable[[bytes], None]] = []
        self.ended: list[Callable[[StreamResult], None]] = []
        #: Rewrite each batch of complete events before it is sent (after the taps saw it as
        #: the upstream sent it): the output guards restore placeholders this way.
        self.filters: list[Callable[[bytes], bytes]] = []
        #: The client API's translation of the internal chunk stream (after the filters), its
        #: closing events once the stream completed, and its error event (None: the client
        #: reads chat chunks, the internal shape). Set by the endpoint.
        self.shaper: StreamShaper | None = None
        self.media_type = None
        self.init_headers({"content-type": stream.content_type, "cache-control": "no-cache",
                           "x-accel-buffering": "no", **headers})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        result = StreamResult()
        relay = self.stream.relay
        failed = False
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": self.raw_headers})
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            result.client_closed = True
                            tg.cancel_scope.cancel()
                            return

                async def deadline(cut: anyio.Event) -> None:
                    await cut.wait()
                    result.cut = True
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                if self._cut is not None:
                    tg.start_soon(deadline, self._cut)
                failed = await self._pump(send, relay, result)
                tg.cancel_scope.cancel()
            if result.cut and not result.completed and not result.client_closed:
                result.error = "the gateway shut down before the stream finished"
                await send({"type": "http.response.body",
                            "body": self._error_event(result.error, "gateway_shutdown"),
                            "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            result.client_closed = True
        finally:
            result.usage = relay.usage
            result.ended = time.perf_counter()
            with anyio.CancelScope(shield=True):
                try:
                    await self.stream.close(failed=failed, completed=result.completed)
                finally:
                    self._on_done(result)
                    for ended in self.ended:
                        ended(result)

    def _error_event(self, message: str, code: str) -> bytes:
        """The event that ends a broken stream, in the client's shape."""
        if self.shaper is not None:
            return self.shaper.error(message, code)
        return b"data: " + error_body(message, type="server_error", code=code) + b"\n\n"

    async def _send(self, send: Send, body: bytes) -> None:
        for tap in self.taps:
            tap(body)
        for rewrite in self.filters:
            body = rewrite(body)
        if self.shaper is not None:
            body = self.shaper.feed(body)
        if body:
            await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _pump(self, send: Send, relay: StreamRelay, result: StreamResult) -> bool:
        """Forward upstream events; True if the upstream failed mid-stream."""
        if self.stream.first:
            await self._send(send, self.stream.first)
            result.ttfb_ms = (time.perf_counter() - self._started) * 1000
        problem = await self._relay(send, relay, result)
        if problem is not None:
            result.completed = False
            result.error = f"backend {self.stream.backend.name} failed mid-stream ({problem})"
            logger.warning("%s", result.error)
            await send({"type": "http.response.body",
                        "body": self._error_event(result.error, "backend_stream_error"),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return problem is not None

    async def _relay(self, send: Send, relay: StreamRelay, result: StreamResult) -> str | None:
        """Pump the rest of the stream; why it broke, or None if it completed."""
        timeout = self.stream.backend.config.timeout
        seen = relay.events
        chunks = aiter(self.stream.chunks)
        # Seconds spent waiting on the upstream since the last data event: comment lines do not
        # reset it (see the module), and time spent sending to a slow client does not count.
        waited = 0.0
        try:
            while True:
                began = anyio.current_time()
                with anyio.move_on_after(timeout - waited) as idle:
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                if idle.cancelled_caught:
                    return f"timeout: no data event within {timeout:g} s"
                waited += anyio.current_time() - began
                out = relay.feed(chunk)
                if out:
                    await self._send(send, out)
                    if result.ttfb_ms is None:
                        result.ttfb_ms = (time.perf_counter() - self._started) * 1000
                if relay.error is not None:
                    return f"bad_response: {relay.error}"
                if relay.events != seen:
                    seen, waited = relay.events, 0.0
        except UpstreamHTTPError as exc:
            kind = "timeout" if isinstance(exc, UpstreamTimeout) else "transport_error"
            return f"{kind}: {type(exc).__name__}"
        tail = relay.finish()
        if relay.error is not None:
            return f"bad_response: {relay.error}"
        if tail:
            if not tail.endswith((b"\n\n", b"\r\r", b"\r\n\r\n")):
                tail += b"\n\n"  # an unterminated last event would be dropped by SSE clients
            await self._send(send, tail)
        if not relay.completed:
            return "incomplete: the stream ended without [DONE] or a finish_reason"
        if self.shaper is not None:
            closing = self.shaper.finish()
            if closing:
                await send({"type": "http.response.body", "body": closing, "more_body": True})
        result.completed = True
        return None

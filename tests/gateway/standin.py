"""A stand-in OpenAI-compatible backend for tests and the benchmark, served by uvicorn.

It answers ``POST /v1/chat/completions`` (plain or streamed) and can be told, for all requests or
for the next few, to delay, fail with any status, drop the connection after the headers, or stall
mid-stream. It records every request it receives, so tests can see what the gateway sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn

#: Behaviours: "ok", "500", "429" (or any status), "drop" (headers then close), "drop_mid"
#: (stream two chunks then close), "delay:<seconds>", "stall_mid" (stream two chunks then hang),
#: "hold" (answer once ``gate`` is set, or when the client leaves).
#: Broken answers: "truncate" (stream chunks, no finish_reason, no [DONE], then end), "garbage"
#: (non-JSON data lines from the start), "garbage_mid" (two good chunks, then a non-JSON one),
#: "nochoices" / "choices:<json>" (answers or chunks without a list ``choices``),
#: "redirect:<status>" (a 3xx to another URL), "echo_key[:<status>]" (an error, 500 by default,
#: whose body echoes the Authorization header it got), "huge_event:<bytes>" (streamed: one good
#: chunk, then an event of that many bytes with no terminator; not streamed: an answer of that
#: many bytes), "comments" (only ``: keep-alive`` lines, for ~10 s or until the client
#: leaves, then the end) and "comments_mid" (one good chunk, then the same).
#: "tool_call": a call of the request's first tool with :data:`TOOL_ARGUMENTS` (streamed: its
#: arguments in two pieces), ``finish_reason: "tool_calls"``.

#: The arguments of a "tool_call" answer.
TOOL_ARGUMENTS = '{"city": "Paris"}'


@dataclass
class StandIn:
    """An ASGI app; ``mode`` applies to every request unless ``script`` holds a one-shot one."""

    name: str
    mode: str = "ok"
    chunks: int = 5
    reply: str | None = None
    #: Long answers: usage reports this many completion tokens — fewer when the request's
    #: ``max_tokens`` / ``max_completion_tokens`` is smaller, as a real backend stops there
    #: (``finish_reason: "length"``). None: 20 tokens (a stream: ``chunks``).
    completion_tokens: int | None = None
    #: Seconds between a stream's content events, as between a real model's tokens (0: all at
    #: once, which a client may read as one chunk).
    chunk_gap: float = 0.0
    script: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    record: bool = True
    #: Released "hold" requests: set it to let them answer.
    gate: threading.Event = field(default_factory=threading.Event)

    def next(self, *behaviours: str) -> None:
        """Behaviours for the next requests, one each, before falling back to ``mode``."""
        self.script.extend(behaviours)

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:  # the lifespan, answered
            return
        if scope["path"] != "/v1/chat/completions" or scope["method"] != "POST":
            await _json(send, 404, {"error": {"message": "not found", "type": "x"}})
            return
        request = json.loads(body)
        if self.record:
            self.requests.append(request)
            self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        behaviour = self.script.popleft() if self.script else self.mode
        if behaviour.startswith("delay:"):
            if await _client_left_within(float(behaviour.split(":", 1)[1]), receive):
                return
            behaviour = "ok"
        if behaviour == "hold":
            if await _held_until(self.gate, receive):
                return
            behaviour = "ok"
        if behaviour.isdigit():
            await _json(send, int(behaviour), {"error": {
                "message": f"{self.name} fails with {behaviour}", "type": "server_error",
                "param": None, "code": None}})
            return
        if behaviour.startswith("redirect:"):
            await send({"type": "http.response.start", "status": int(behaviour[9:]),
                        "headers": [(b"location", b"http://127.0.0.1:9/elsewhere"),
                                    (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if behaviour.startswith("echo_key"):
            seen = self.headers[-1].get("authorization", "") if self.record else ""
            status = int(behaviour.split(":", 1)[1]) if ":" in behaviour else 500
            await _json(send, status, {"error": {"message": f"invalid request with {seen}",
                                              "type": "server_error"}})
            return
        if behaviour == "drop":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", b"1000")]})
            raise ConnectionAbortedError("stand-in drops the connection")
        text = self.reply or f"{self.name} answers"
        if behaviour == "tool_call":
            await self._tool_call(send, request)
            return
        if request.get("stream"):
            await self._stream(send, receive, request, text, behaviour)
            return
        tokens, finish = self._length(request, 20)
        usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
        if behaviour.startswith("huge_event:"):
            size = int(behaviour.split(":", 1)[1])
            await _json(send, 200, {"id": "x", "choices": [], "pad": "x" * size})
            return
        if behaviour == "nochoices" or behaviour.startswith("choices:"):
            answer = {"id": f"chatcmpl-{self.name}", "object": "chat.completion", "usage": usage}
            if behaviour != "nochoices":
                answer["choices"] = json.loads(behaviour.split(":", 1)[1])
            await _json(send, 200, answer)
            return
        await _json(send, 200, {
            "id": f"chatcmpl-{self.name}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish}],
            "usage": usage})

    async def _tool_call(self, send: Any, request: dict) -> None:
        name = request["tools"][0]["function"]["name"]
        call = {"id": f"call_{self.name}", "type": "function",
                "function": {"name": name, "arguments": TOOL_ARGUMENTS}}
        usage = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
        base = {"id": f"chatcmpl-{self.name}", "created": int(time.time()),
                "model": request.get("model")}
        if not request.get("stream"):
            await _json(send, 200, {**base, "object": "chat.completion", "usage": usage,
                                    "choices": [{"index": 0, "finish_reason": "tool_calls",
                                                 "message": {"role": "assistant", "content": None,
                                                             "tool_calls": [call]}}]})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        half = len(TOOL_ARGUMENTS) // 2
        deltas = [{"role": "assistant"},
                  {"tool_calls": [{"index": 0, **call, "function": {"name": name,
                                                                    "arguments": ""}}]},
                  {"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS[:half]}}]},
                  {"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS[half:]}}]}]
        chunks = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
        chunks.append({"index": 0, "delta": {}, "finish_reason": "tool_calls"})
        body = b"".join(b"data: " + json.dumps({**base, "object": "chat.completion.chunk",
                                                 "choices": [c]}).encode() + b"\n\n"
                        for c in chunks)
        if (request.get("stream_options") or {}).get("include_usage"):
            body += b"data: " + json.dumps({**base, "object": "chat.completion.chunk",
                                            "choices": [], "usage": usage}).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": body + b"data: [DONE]\n\n",
                    "more_body": False})

    def _length(self, request: dict, default: int) -> tuple[int, str]:
        """Completion tokens of this answer and its finish reason."""
        if self.completion_tokens is None:
            return default, "stop"
        caps = [request[f] for f in ("max_tokens", "max_completion_tokens")
                if isinstance(request.get(f), int)]
        cap = min(caps) if caps else None
        if cap is not None and cap < self.completion_tokens:
            return cap, "length"
        return self.completion_tokens, "stop"

    async def _stream(self, send: Any, receive: Any, request: dict, text: str,
                      behaviour: str) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})

        def event(obj: dict) -> dict:
            return {"type": "http.response.body", "body": b"data: " + json.dumps(obj).encode()
                    + b"\n\n", "more_body": True}

        base = {"id": f"chatcmpl-{self.name}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": request.get("model")}
        if await self._broken_stream(send, receive, behaviour, base, event):
            return
        await send(event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                                "finish_reason": None}]}))
        for i in range(self.chunks):
            if i == 2 and behaviour == "drop_mid":
                raise ConnectionAbortedError("stand-in drops the stream")
            if i == 2 and behaviour == "stall_mid":
                await _client_left_within(3600, receive)
                return
            await send(event({**base, "choices": [{"index": 0,
                                                   "delta": {"content": f"{text} {i}|"},
                                                   "finish_reason": None}]}))
            if self.chunk_gap:
                await asyncio.sleep(self.chunk_gap)
        tokens, finish = self._length(request, self.chunks)
        await send(event({**base, "choices": [{"index": 0, "delta": {},
                                                "finish_reason": finish}]}))
        if (request.get("stream_options") or {}).get("include_usage"):
            await send(event({**base, "choices": [], "usage": {
                "prompt_tokens": 10, "completion_tokens": tokens,
                "total_tokens": 10 + tokens}}))
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n",
                    "more_body": False})


    async def _broken_stream(self, send: Any, receive: Any, behaviour: str, base: dict,
                             event: Any) -> bool:
        """Send one of the broken streams; False if ``behaviour`` is not one of them."""
        def content(i: int) -> dict:
            return event({**base, "choices": [{"index": 0, "delta": {"content": f"x{i}"},
                                               "finish_reason": None}]})

        def raw(data: bytes, more: bool = True) -> dict:
            return {"type": "http.response.body", "body": data, "more_body": more}

        if behaviour == "truncate":
            for i in range(self.chunks):
                await send(content(i))
        elif behaviour == "garbage":
            await send(raw(b"data: this is not json\n\ndata: {oops\n\n"))
        elif behaviour == "garbage_mid":
            await send(content(0))
            await send(content(1))
            # A pause, as between a real model's tokens: the gateway has committed to the good
            # events before the garbage arrives (a client that reads them together in one
            # chunk would see the garbage before committing, and fall back instead).
            await asyncio.sleep(0.05)
            await send(raw(b"data: {\"choices\": [{\"delta\"\n\n"))
        elif behaviour == "nochoices" or behaviour.startswith("choices:"):
            obj = {**base}
            if behaviour != "nochoices":
                obj["choices"] = json.loads(behaviour.split(":", 1)[1])
            await send(event(obj))
            await send(raw(b"data: [DONE]\n\n"))
        elif behaviour.startswith("huge_event:"):
            size = int(behaviour.split(":", 1)[1])
            await send(content(0))
            piece = b"data: " + b"x" * 65_536
            sent = 0
            while sent < size:
                await send(raw(piece[:size - sent]))
                sent += len(piece)
        elif behaviour in ("comments", "comments_mid"):
            if behaviour == "comments_mid":
                await send(content(0))
            # Bounded (then the stream just ends), so that a gateway missing the idle timeout
            # fails a test instead of hanging it.
            for _ in range(500):
                if await _client_left_within(0.02, receive):
                    return True
                await send(raw(b": keep-alive\n\n"))
        else:
            return False
        await send(raw(b"", more=False))
        return True


async def request_body(scope: dict, receive: Any, send: Any) -> bytes | None:
    """A stand-in's first step: answer the lifespan protocol (then None), else read the whole
    request body (what every stand-in app here needs before it decides how to misbehave)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _client_left_within(seconds: float, receive: Any) -> bool:
    """Sleep ``seconds`` unless the client disconnects first (then True)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    waiter = asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
    return bool(done)


async def _held_until(gate: threading.Event, receive: Any) -> bool:
    """Wait until ``gate`` is set (then False) or the client disconnects (then True)."""
    while not gate.is_set():
        if await _client_left_within(0.01, receive):
            return True
    return False


async def _json(send: Any, status: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def free_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port (no race between choosing and binding)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it a response written in two parts waits
    # for the client's delayed ACK (~40 ms per request on Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; ``url`` once started."""

    def __init__(self, app: Any, config: uvicorn.Config | None = None, **settings: Any) -> None:
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {"log_level": "warning", "lifespan": "on", "access_log": False,
                    "timeout_graceful_shutdown": 2, **settings}
        self.server = uvicorn.Server(config or uvicorn.Config(app, **settings))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def start(self, timeout: float = 60.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread died during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

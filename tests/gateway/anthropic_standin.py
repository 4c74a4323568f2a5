"""A stand-in Anthropic Messages backend for tests: ``POST /v1/messages``, plain or streamed.

It checks what Anthropic checks before answering — the ``x-api-key`` and ``anthropic-version``
headers, a ``max_tokens``, turns that alternate and start with the user, no system turn, each
``tool_result`` answering a ``tool_use`` of the turn before — and answers a refused request
with Anthropic's error shape, so a gateway that translates badly fails the tests. It records
every request and its headers.

What it answers: with ``tools`` and a last user turn that holds no ``tool_result``, a
``tool_use`` of the first tool with ``{"city": "Paris"}`` (``stop_reason: tool_use``); after a
``tool_result``, the text ``"<name> read: <the result>"``; else ``reply`` or
``"<name> answers"``; with ``thinking`` enabled, a thinking block ``"Let me think."`` comes
first. Streamed text comes in ``chunks`` pieces, the tool's input in three
``input_json_delta`` pieces, with ``ping`` events between.

Behaviours (``mode``, or one-shot ones queued in ``script``): ``ok``; a status such as
``529`` / ``429`` / ``500`` / ``400`` (an Anthropic error body); ``garbage`` (not streamed: a
200 whose body is not JSON; streamed: non-JSON data after ``message_start``); and, for streams,
``truncate`` (the whole answer and its ``message_delta`` but no ``message_stop``),
``truncate_early`` (``message_start``, then the end), ``overloaded_event`` (``message_start``
then an ``error`` event) and ``bad_order`` (a delta before its block starts).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from standin import request_body

#: The key the stand-in accepts in ``x-api-key``.
ANTHROPIC_KEY = "sk-ant-standin-key"


@dataclass
class AnthropicStandIn:
    name: str
    mode: str = "ok"
    chunks: int = 3
    reply: str | None = None
    script: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.mode, self.chunks, self.reply = "ok", 3, None
        self.script.clear()
        self.requests.clear()
        self.headers.clear()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        if scope["path"] != "/v1/messages" or scope["method"] != "POST":
            await _json(send, 404, _error("not_found_error", "Not found"))
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.headers.append(headers)
        try:
            request = json.loads(body)
        except ValueError:
            await _json(send, 400, _error("invalid_request_error", "body is not JSON"))
            return
        self.requests.append(request)
        if headers.get("x-api-key") != ANTHROPIC_KEY:
            await _json(send, 401, _error("authentication_error", "invalid x-api-key"))
            return
        problem = _refusal(request, headers)
        if problem:
            await _json(send, 400, _error("invalid_request_error", problem))
            return
        behaviour = self.script.popleft() if self.script else self.mode
        if behaviour.isdigit():
            kind = {"529": "overloaded_error", "429": "rate_limit_error",
                    "400": "invalid_request_error"}.get(behaviour, "api_error")
            await _json(send, int(behaviour), _error(kind, f"{self.name} fails with {behaviour}"))
            return
        content, stop_reason = self._answer(request)
        if isinstance(request.get("thinking"), dict):
            content = [{"type": "thinking", "thinking": "Let me think.", "signature": "c2ln"},
                       *content]
        usage = {"input_tokens": 10, "output_tokens": 12, "cache_read_input_tokens": 4,
                 "cache_creation_input_tokens": 0}
        message = {"id": f"msg_{self.name}", "type": "message", "role": "assistant",
                   "model": request["model"], "content": content, "stop_reason": stop_reason,
                   "stop_sequence": None, "usage": usage}
        if request.get("stream"):
            await self._stream(send, message, behaviour)
        elif behaviour == "garbage":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b"{oops"})
        else:
            await _json(send, 200, message)

    def _answer(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        last = request["messages"][-1]["content"]
        results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            seen = results[0]["content"]
            if isinstance(seen, list):
                seen = "".join(b.get("text", "") for b in seen)
            return [{"type": "text", "text": f"{self.name} read: {seen}"}], "end_turn"
        if request.get("tools"):
            tool = request["tools"][0]["name"]
            return [{"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": f"toolu_{self.name}", "name": tool,
                     "input": {"city": "Paris"}}], "tool_use"
        return [{"type": "text", "text": self.reply or f"{self.name} answers"}], "end_turn"

    async def _stream(self, send: Any, message: dict[str, Any], behaviour: str) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})

        async def event(obj: dict[str, Any]) -> None:
            data = f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})

        start = {**message, "content": [], "stop_reason": None,
                 "usage": {**message["usage"], "output_tokens": 1}}
        await event({"type": "message_start", "message": start})
        if behaviour == "overloaded_event":
            await event({"type": "error", "error": {"type": "overloaded_error",
                                                    "message": "Overloaded"}})
        elif behaviour == "garbage":
            await send({"type": "http.response.body", "body": b"data: {oops\n\n",
                        "more_body": True})
        elif behaviour == "truncate_early":
            pass
        elif behaviour == "bad_order":
            await event({"type": "content_block_delta", "index": 5,
                         "delta": {"type": "text_delta", "text": "x"}})
        else:
            await self._blocks(event, message["content"])
            await event({"type": "message_delta", "delta": {
                "stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]}})
            if behaviour != "truncate":
                await event({"type": "message_stop"})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _blocks(self, event: Any, content: list[dict[str, Any]]) -> None:
        for index, block in enumerate(content):
            if block["type"] == "text":
                await event({"type": "content_block_start", "index": index,
                             "content_block": {"type": "text", "text": ""}})
                await event({"type": "ping"})
                text, n = block["text"], self.chunks
                size = -(-len(text) // n)
                for i in range(0, len(text), size):
                    await event({"type": "content_block_delta", "index": index,
                                 "delta": {"type": "text_delta", "text": text[i:i + size]}})
            elif block["type"] == "thinking":
                await event({"type": "content_block_start", "index": index,
                             "content_block": {"type": "thinking", "thinking": ""}})
                for piece in ("Let me ", "think."):
                    await event({"type": "content_block_delta", "index": index,
                                 "delta": {"type": "thinking_delta", "thinking": piece}})
                await event({"type": "content_block_delta", "index": index,
                             "delta": {"type": "signature_delta", "signature": "c2ln"}})
            else:
                await event({"type": "content_block_start", "index": index, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
                raw = json.dumps(block["input"])
                third = -(-len(raw) // 3)
                for i in range(0, len(raw), third):
                    await event({"type": "content_block_delta", "index": index, "delta": {
                        "type": "input_json_delta", "partial_json": raw[i:i + third]}})
            await event({"type": "content_block_stop", "index": index})


def _refusal(request: dict[str, Any], headers: dict[str, str]) -> str | None:
    """Why Anthropic would refuse ``request`` (the checks a translation can get wrong)."""
    if not headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if "authorization" in headers:
        return "the key belongs in x-api-key"
    if not isinstance(request.get("max_tokens"), int):
        return "max_tokens: Field required"
    if not isinstance(request.get("model"), str):
        return "model: Field required"
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i and messages[i - 1]["role"] == role:
            return "messages: roles must alternate between user and assistant"
        if not isinstance(message.get("content"), list | str):
            return f"messages.{i}.content: Input should be a list or a string"
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block.get("type") == "text" and not block.get("text"):
                return "messages: text content blocks must be non-empty"
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in uses:
                return f"messages.{i}: tool_result has no matching tool_use before it"
        uses = {b["id"] for b in message["content"] if isinstance(b, dict)
                and b.get("type") == "tool_use"} if isinstance(message["content"], list) \
            else set()
    if messages[0]["role"] != "user":
        return "messages: the first message must use the user role"
    if "temperature" in request and not 0 <= request["temperature"] <= 1:
        return "temperature: must be between 0 and 1"
    return None


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


async def _json(send: Any, status: int, obj: dict[str, Any]) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

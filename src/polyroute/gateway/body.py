"""Reading and checking a chat-completions request before anything is routed.

The gateway checks only what it needs (``model``, ``messages``, ``stream`` and its own
``polyroute`` extension); every other field goes to the backend untouched, so new OpenAI
parameters work without a gateway release.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request

from polyroute.errors import PolicyError
from polyroute.features import chat_to_text
from polyroute.gateway.errors import APIError
from polyroute.policies import Preference, policy_for

#: Body field for per-request routing preferences (``extra_body={"polyroute": {...}}``).
EXTENSION_FIELD = "polyroute"
#: Headers accepted for the same purpose; the body extension wins where both are given.
PREFERENCE_HEADERS = {"x-polyroute-lambda": "lam", "x-polyroute-floor": "floor",
                      "x-polyroute-budget": "budget"}


class ClientGone(Exception):
    """The client closed the connection before its request was answered: its own doing, so
    recorded as ``client_closed``, never as a gateway error."""


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (413) without reading it all, and a
    body not complete within ``timeout`` seconds (408, and the connection is closed: a client
    trickling its upload would otherwise hold a connection and a task as long as it likes).
    Raises :class:`ClientGone` if the client leaves during the upload."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise APIError(400, "invalid Content-Length header") from None
        if size > limit:
            raise APIError(413, f"request body of {size} bytes exceeds the limit of {limit}",
                           code="request_too_large")
    chunks, size = [], 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise APIError(413, f"request body exceeds the limit of {limit} bytes",
                                   code="request_too_large")
                chunks.append(chunk)
    except TimeoutError:
        raise APIError(408, f"the request body did not arrive within {timeout:g} s",
                       code="request_timeout", headers={"connection": "close"}) from None
    except ClientDisconnect:
        raise ClientGone("the client closed the connection during the upload") from None
    return b"".join(chunks)


def parse_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise APIError(400, "the request body is empty; expected a JSON object")
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise APIError(400, "the request body must be a JSON object")
    return obj


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat-completions request."""

    body: dict[str, Any]
    model: str
    stream: bool
    wants_usage: bool
    text: str
    preference: Preference | None


def parse_chat(obj: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    """Check the fields the gateway relies on (400 naming the field otherwise)."""
    model = obj.get("model")
    if not isinstance(model, str) or not model:
        raise APIError(400, "'model' must be a route profile or backend name", param="model")
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list of messages", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise APIError(400, f"messages[{i}] must be an object with a 'role'",
                           param=f"messages[{i}]")
    stream = obj.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise APIError(400, "'stream' must be true or false", param="stream")
    options = obj.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise APIError(400, "'stream_options' must be an object", param="stream_options")
    wants_usage = bool(options and options.get("include_usage"))
    ext = obj.get(EXTENSION_FIELD)
    body = {k: v for k, v in obj.items() if k != EXTENSION_FIELD} if ext is not None else obj
    return ChatRequest(body=body, model=model, stream=stream, wants_usage=wants_usage,
                       text=chat_to_text(messages), preference=parse_preference(ext, headers))


def parse_preference(ext: Any, headers: Mapping[str, str]) -> Preference | None:
    """A per-request preference from the body extension or headers (None if neither)."""
    values: dict[str, float] = {}
    for header, knob in PREFERENCE_HEADERS.items():
        raw = headers.get(header)
        if raw is not None:
            values[knob] = _number(raw, header)
    if ext is not None:
        if not isinstance(ext, dict):
            raise APIError(400, f"'{EXTENSION_FIELD}' must be an object such as "
                                f'{{"lam": 0.5}} or {{"floor": 0.8}}', param=EXTENSION_FIELD)
        unknown = sorted(set(ext) - {"lam", "floor", "budget"})
        if unknown:
            raise APIError(400, f"'{EXTENSION_FIELD}': unknown field(s) {', '.join(unknown)}; "
                                f"use lam, floor or budget", param=EXTENSION_FIELD)
        given = {k: _number(v, f"{EXTENSION_FIELD}.{k}") for k, v in ext.items()
                 if v is not None}
        if given:
            values = given
    if not values:
        return None
    if len(values) > 1:
        raise APIError(400, f"give only one routing preference, got {', '.join(sorted(values))}",
                       param=EXTENSION_FIELD)
    pref = Preference(lam=values.get("lam", 0.0), budget=values.get("budget"),
                      floor=values.get("floor"))
    try:
        policy_for(pref)
    except PolicyError as exc:
        raise APIError(400, str(exc), param=EXTENSION_FIELD) from None
    return pref


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise APIError(400, f"{where} must be a number, got {value!r}", param=where)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise APIError(400, f"{where} must be a number, got {value!r}", param=where) from None
    if not math.isfinite(x):
        raise APIError(400, f"{where} must be a finite number", param=where)
    return x

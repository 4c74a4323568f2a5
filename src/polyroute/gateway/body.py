"""Reading and checking a request body before anything is routed.

Two layers. :func:`parse_object` makes any JSON body safe to handle at all: nesting is capped,
``NaN`` / ``Infinity`` are refused (Python's json accepts them, JSON does not) and so is any
string, key or value, holding a lone surrogate (valid JSON, ``"\\ud800"``, but not text: it
cannot be encoded as UTF-8, so it would break the record's SQLite write). :func:`parse_chat`
then checks the OpenAI fields (:mod:`polyroute.gateway.validate`) and the gateway's own
``polyroute`` extension; unknown fields go to the backend untouched, so new OpenAI parameters
work without a gateway release.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request

from polyroute.errors import PolicyError
from polyroute.features import chat_to_text
from polyroute.gateway import fastjson
from polyroute.gateway.errors import APIError
from polyroute.gateway.validate import validate_chat
from polyroute.policies import Preference, policy_for

#: Body field for per-request routing preferences (``extra_body={"polyroute": {...}}``).
EXTENSION_FIELD = "polyroute"
#: Headers accepted for the same purpose; the body extension wins where both are given.
PREFERENCE_HEADERS = {"x-polyroute-lambda": "lam", "x-polyroute-floor": "floor",
                      "x-polyroute-budget": "budget"}
#: Deepest nesting of arrays and objects a body may have (OpenAI's own bodies need under ten);
#: deeper input would cost recursion in every reader of it.
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    """The body as a JSON object, checked by :func:`check_json` (400 otherwise)."""
    if not raw:
        raise APIError(400, "the request body is empty; expected a JSON object")
    try:
        obj = fastjson.loads(raw, parse_constant=_no_constant)
    except RecursionError:  # far deeper than MAX_DEPTH: json gives up near 1,000 levels
        raise APIError(400, _too_deep()) from None
    except ValueError as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise APIError(400, "the request body must be a JSON object")
    check_json(obj)
    return obj


def check_json(value: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, a lone surrogate in any string or key and
    a non-finite number (``1e999`` parses as infinity), naming the field; one walk, O(size)."""
    try:
        _walk(value, 1)
    except _Refused as exc:
        param = "".join(reversed(exc.path)).lstrip(".") if exc.located else None
        param = param or None
        where = f"'{param}'" if param else "the request body"
        raise APIError(400, exc.message.format(where=where), param=param) from None


class _Refused(Exception):
    """Raised at the bad node; each level adds its key on the way out (path is leaf-first)."""

    def __init__(self, message: str, *, located: bool = True) -> None:
        self.message = message
        #: Whether the path is worth naming (not for nesting: it would be 64 levels long).
        self.located = located
        self.path: list[str] = []


def _walk(container: dict[str, Any] | list[Any], depth: int) -> None:
    """Check ``container``'s keys and items, descending into nested ones. Scalars are checked
    inline, not by a call each: this runs over every node of every body (json's exact types)."""
    if depth > MAX_DEPTH:
        raise _Refused(_too_deep(), located=False)
    is_dict = isinstance(container, dict)
    items: Iterable[tuple[Any, Any]] = container.items() if is_dict else enumerate(container)
    for key, item in items:
        if is_dict and not key.isascii() and _SURROGATE.search(key):
            raise _Refused("a key in {where} contains a lone surrogate (U+D800 to U+DFFF), "
                           "which is not valid Unicode text")
        kind = type(item)
        try:
            if kind is str:
                if not item.isascii() and _SURROGATE.search(item):
                    raise _Refused(_SURROGATE_MESSAGE)
            elif kind is float:
                if not math.isfinite(item):
                    raise _Refused("{where} must be a finite number")
            elif kind is dict or kind is list:
                _walk(item, depth + 1)
        except _Refused as exc:
            exc.path.append(f".{key}" if is_dict else f"[{key}]")
            raise


_SURROGATE_MESSAGE = ("{where} contains a lone surrogate (U+D800 to U+DFFF), which is not "
                      "valid Unicode text")


def _too_deep() -> str:
    return f"the request body is nested deeper than {MAX_DEPTH} levels"


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


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
    """Check ``obj`` as OpenAI would, and the routing preference (400 naming the field)."""
    validate_chat(obj)
    model, messages = obj["model"], obj["messages"]
    stream = bool(obj.get("stream"))
    options = obj.get("stream_options")
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

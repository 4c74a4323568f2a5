"""What a client API is: the two ends of the pipeline for one wire format.

Why a seam here: everything between parse and response (signals, rules, decide, reserve, the
serving strategies, the cache, the guards, the record) reads one internal request — a checked
Chat Completions body (:class:`~polyroute.gateway.body.ChatRequest`) — and produces one internal
answer: a chat completion (JSON), or a stream of ``chat.completion.chunk`` events. A client API
translates the client's body into that request on the way in, and the internal answer into the
client's shape on the way out; the pipeline never learns which API the client spoke.

A :class:`ClientAPI` is stateless and shared by every request of its endpoint; :meth:`parse`
returns, with the internal request, an :class:`Exchange`: that one request's translation state
(the client's model name, its input items...), which shapes the answer.
"""

from __future__ import annotations

import json
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import Response

from polyroute.gateway.errors import APIError
from polyroute.gateway.validate import Check

if TYPE_CHECKING:
    from polyroute.gateway.body import ChatRequest
    from polyroute.gateway.context import RequestContext

__all__ = ["ChunkStream", "ClientAPI", "Exchange", "StreamShaper", "as_list", "chat_chunks",
           "first_choice", "internal_error", "json_payloads", "new_id", "one_of", "sse_event"]


class StreamShaper(Protocol):
    """Turns the internal chat-chunk SSE stream of one request into the client's events.

    ``feed`` gets batches of complete events as they pass (and may hold state between them);
    ``finish`` is called once when the internal stream completed (it closes what the client's
    format needs closed, at most once even if ``[DONE]`` already did); ``error`` renders the
    event that ends a stream which broke."""

    def feed(self, events: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def error(self, message: str, code: str) -> bytes: ...


class Exchange(Protocol):
    """One request's translation back: the internal answer in the client's shape."""

    def answer(self, completion: dict[str, Any]) -> bytes:
        """A complete internal chat completion as the client's response body (JSON)."""
        ...

    def stream(self) -> StreamShaper:
        """A fresh shaper for the internal stream of this request."""
        ...


class ClientAPI(Protocol):
    """One wire format a client speaks (Chat Completions, Anthropic Messages, Responses)."""

    #: Short name (``chat``, ``messages``, ``responses``), used in logs and tests.
    name: str

    def authorization(self, headers: Mapping[str, str]) -> str | None:
        """The ``Authorization``-style credential the key ring checks (``Bearer <key>``)."""
        ...

    async def parse(self, ctx: RequestContext, obj: dict[str, Any]
                    ) -> tuple[ChatRequest, Exchange]:
        """The client's JSON body as the internal request, or a 400 :class:`APIError`."""
        ...

    def error_response(self, exc: APIError, headers: Mapping[str, str] | None = None
                       ) -> Response:
        """An error in the client's shape and status."""
        ...


# -- helpers every API shares ---------------------------------------------------------------------
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE = re.compile(rb"\r\n|\r|\n")


def json_payloads(events: bytes) -> Iterator[bytes]:
    """The ``data`` payload of each complete SSE event in ``events`` (comments skipped)."""
    for event in _EVENT_END.split(events):
        data = [line[5:].removeprefix(b" ") for line in _LINE.split(event)
                if line.startswith(b"data:")]
        if data:
            yield b"\n".join(data)


def chat_chunks(events: bytes) -> Iterator[dict[str, Any] | None]:
    """Each internal chunk in ``events`` as an object, and None for ``[DONE]``. The relay has
    already refused malformed events (:mod:`~polyroute.gateway.sse`); anything that is still
    not an object is skipped rather than trusted."""
    for payload in json_payloads(events):
        if payload.strip() == b"[DONE]":
            yield None
            continue
        try:
            obj = json.loads(payload)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty one: an answer's fields are read, never
    trusted (a backend may send ``"choices": true``)."""
    return value if isinstance(value, list) else []


def sse_event(name: str | None, data: Any) -> bytes:
    """One server-sent event: ``event: name`` (if any) and its JSON ``data``."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + body + b"\n\n"


def internal_error(status: int, content: bytes) -> APIError:
    """An error answer of the pipeline (OpenAI-shaped, as a backend or a stage gave it) read
    back into an :class:`APIError`, so that each API can say it in its own shape."""
    message, kind, code, param = f"HTTP {status}", None, None, None
    try:
        obj = json.loads(content)
    except ValueError:
        obj = None
    error = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(error, dict):
        message = error.get("message") if isinstance(error.get("message"), str) else message
        kind = error.get("type") if isinstance(error.get("type"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
        param = error.get("param") if isinstance(error.get("param"), str) else None
    elif isinstance(error, str):
        message = error
    return APIError(status, message, type=kind, code=code, param=param)


def first_choice(completion: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A completion's first choice and its message (empty where missing or malformed)."""
    choices = as_list(completion.get("choices"))
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    return choice, message if isinstance(message, dict) else {}


def new_id(prefix: str) -> str:
    """A fresh id the gateway makes up (``msg_…``, ``resp_…``): 96 random bits in hex."""
    return prefix + secrets.token_hex(12)


def one_of(*values: str) -> Check:
    """A field that must be one of ``values`` (400 naming it)."""

    def check(value: Any, param: str) -> None:
        if value not in values:
            raise APIError(400, f"Invalid value for '{param}': expected one of "
                                f"{', '.join(values)}, got {value!r}.", param=param,
                           code="invalid_value")

    return check


class ChunkStream(ABC):
    """What every stream shaper shares: reading the internal chunks of a batch in order —
    ``[DONE]`` finishes, usage is kept, the first choice's deltas go to :meth:`_choice` —
    after :meth:`_start` has opened the client's stream on the first chunk."""

    def __init__(self) -> None:
        self._usage: Any = None

    def feed(self, events: bytes) -> bytes:
        out: list[bytes] = []
        for chunk in chat_chunks(events):
            if chunk is None:  # [DONE]
                out.append(self.finish())
                continue
            out.append(self._start())
            if isinstance(chunk.get("usage"), dict):
                self._usage = chunk["usage"]
            for choice in as_list(chunk.get("choices")):
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    out.extend(self._choice(choice))
        return b"".join(out)

    @abstractmethod
    def _start(self) -> bytes:
        """The client API's opening events (once; later calls return nothing)."""

    @abstractmethod
    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        """The client API's events for one chunk's first choice."""

    @abstractmethod
    def finish(self) -> bytes:
        """The closing events, once the internal stream completed."""

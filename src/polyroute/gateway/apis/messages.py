"""Anthropic Messages (``POST /v1/messages``) in and out of the internal Chat Completions shape.

In: every field Anthropic documents for a client-tool request is checked at the edge (type,
range, required), then translated — ``system`` (a string or text blocks) becomes a system
message; content blocks ``text`` / ``image`` / ``tool_use`` / ``tool_result`` become text and
``image_url`` parts, assistant ``tool_calls`` and ``tool`` messages; ``tools`` / ``tool_choice``
become function tools; ``max_tokens`` (required), ``stop_sequences``, ``temperature``,
``top_p``, ``top_k`` (which the 2.x client sends only as extra body fields) and
``metadata.user_id`` (``user``) carry over; ``output_config.effort`` becomes ``reasoning_effort``
(``xhigh`` and ``max`` as ``high``), else an enabled ``thinking`` does by its budget (below 4,096
tokens ``low``, below 16,384 ``medium``, else ``high``): the one knob an OpenAI-compatible model
has; ``output_config.format`` becomes a ``json_schema`` response format. Fields with no meaning
upstream (``cache_control``, ``service_tier``, ``container`` ...) are accepted and not sent.
What has no Chat Completions meaning is refused with a 400 naming the field (server tools,
``document`` blocks, more than 4 stop sequences), never silently dropped — except earlier
turns' ``thinking`` blocks, which a Chat Completions model cannot take back and Anthropic itself
may strip.

Out: a completion becomes a ``message`` (text and ``tool_use`` blocks; ``stop_reason``
``end_turn`` / ``max_tokens`` / ``tool_use`` / ``stop_sequence``; ``usage`` input and output
tokens), a chunk stream becomes Anthropic's event sequence (:class:`MessagesStream`), an error
becomes ``{"type": "error", "error": {"type", "message"}}``. A stop sequence is only reported as
``stop_sequence`` when the upstream names the one it matched (vLLM's ``stop_reason`` field);
plain Chat Completions does not say, so it reads as ``end_turn``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.gateway.apis.base import (
    ChunkStream,
    as_list,
    first_choice,
    new_id,
    one_of,
    sse_event,
)
from polyroute.gateway.body import EXTENSION_FIELD, ChatRequest, parse_chat
from polyroute.gateway.errors import APIError
from polyroute.gateway.validate import (
    MAX_OUTPUT_TOKENS,
    MAX_STOP,
    Check,
    array,
    boolean,
    check_fields,
    either,
    integer,
    number,
    obj,
    string,
)
from polyroute.signals.text import context_chars

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext

__all__ = ["MESSAGES", "MessagesAPI", "MessagesExchange", "MessagesStream",
           "anthropic_authorization", "count_tokens", "error_body", "estimate_tokens",
           "messages_to_chat", "to_message"]

#: Anthropic's error type per HTTP status (its documented table; 503 is its 529).
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 408: "timeout_error",
                413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                502: "api_error", 503: "overloaded_error", 504: "timeout_error",
                529: "overloaded_error"}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                 "function_call": "tool_use", "content_filter": "refusal"}
#: ``thinking.budget_tokens`` below each bound maps to that effort; at or above the last: high.
_EFFORT_BOUNDS = ((4096, "low"), (16384, "medium"))


def _fail(message: str, param: str) -> APIError:
    return APIError(400, message, param=param, code="invalid_request_error")


# -- checking the request -----------------------------------------------------------------------
_IMAGE_SOURCE = obj(("type",), type=one_of("base64", "url"), media_type=string, data=string,
                    url=string)
_TEXT_BLOCK = obj(("type", "text"), type=string, text=string)
_CACHE = {"cache_control": obj()}


def _block(value: Any, param: str) -> None:
    """One content block of a message (or of a tool result)."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise _fail(f"{param}: a content block must be an object with a string 'type'", param)
    kind = value["type"]
    if kind == "text":
        _TEXT_BLOCK(value, param)
    elif kind == "image":
        obj(("source",), source=_IMAGE_SOURCE)(value, param)
        source = value["source"]
        need = ("media_type", "data") if source["type"] == "base64" else ("url",)
        for name in need:
            if not isinstance(source.get(name), str):
                raise _fail(f"{param}.source.{name}: required for a {source['type']} image",
                            f"{param}.source.{name}")
    elif kind == "tool_use":
        obj(("id", "name", "input"), id=string, name=string, input=obj())(value, param)
    elif kind == "tool_result":
        obj(("tool_use_id",), tool_use_id=string, is_error=boolean,
            content=either("a string or an array of text and image blocks", (str, string),
                           (list, array(_result_block))))(value, param)
    elif kind in ("thinking", "redacted_thinking"):
        pass  # earlier turns' thinking: dropped in translation (see the module)
    else:
        raise _fail(f"{param}: content blocks of type {kind!r} are not supported by this "
                    f"gateway (text, image, tool_use, tool_result)", f"{param}.type")


def _result_block(value: Any, param: str) -> None:
    _block(value, param)
    if value["type"] not in ("text", "image"):
        raise _fail(f"{param}: a tool_result holds text and image blocks only", param)


def _message(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise _fail(f"{param}: a message must be an object", param)
    check_fields(value, {"role": one_of("user", "assistant"),
                         "content": either("a string or an array of content blocks",
                                           (str, string), (list, array(_block)))},
                 f"{param}.", ("role", "content"))


def _messages(value: Any, param: str) -> None:
    if not isinstance(value, list) or not value:
        raise _fail("messages: expected a non-empty array of messages", param)
    for i, message in enumerate(value):
        _message(message, f"{param}[{i}]")


def _tool(value: Any, param: str) -> None:
    if isinstance(value, dict) and "input_schema" not in value and "type" in value:
        raise _fail(f"{param}: server tools ({value.get('type')!r}) are not supported by this "
                    f"gateway; give client tools with name and input_schema", param)
    obj(("name", "input_schema"), name=string, description=string, input_schema=obj(),
        type=string, **_CACHE)(value, param)


def _tool_choice(value: Any, param: str) -> None:
    obj(("type",), type=one_of("auto", "any", "tool", "none"), name=string,
        disable_parallel_tool_use=boolean)(value, param)
    if value["type"] == "tool" and not isinstance(value.get("name"), str):
        raise _fail(f"{param}.name: required when type is 'tool'", f"{param}.name")


def _thinking(value: Any, param: str) -> None:
    obj(("type",), type=one_of("enabled", "disabled", "adaptive", "between_tools"),
        budget_tokens=integer(1, MAX_OUTPUT_TOKENS), display=string)(value, param)
    if value["type"] == "enabled" and value.get("budget_tokens") is None:
        raise _fail(f"{param}.budget_tokens: required when thinking is enabled",
                    f"{param}.budget_tokens")


_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_OUTPUT_CONFIG = obj(effort=one_of(*_EFFORTS),
                     format=obj(("type", "schema"), type=one_of("json_schema"), schema=obj()))

_SYSTEM = either("a string or an array of text blocks", (str, string),
                 (list, array(_TEXT_BLOCK)))

#: Every checked field of a Messages request (the ones count_tokens takes first).
_COUNT_FIELDS: dict[str, Check] = {
    "model": string,
    "messages": _messages,
    "system": _SYSTEM,
    "tools": array(_tool),
    "tool_choice": _tool_choice,
    "thinking": _thinking,
    "output_config": _OUTPUT_CONFIG,
}
_FIELDS: dict[str, Check] = {
    **_COUNT_FIELDS,
    "max_tokens": integer(1, MAX_OUTPUT_TOKENS),
    "stop_sequences": array(string, MAX_STOP),
    "temperature": number(0, 1),
    "top_p": number(0, 1),
    "top_k": integer(0, 2 ** 31 - 1),
    "metadata": obj(user_id=string),
    "stream": boolean,
    "service_tier": string,
}


# -- translating the request ---------------------------------------------------------------------
def messages_to_chat(obj_: Mapping[str, Any], *, counting: bool = False) -> dict[str, Any]:
    """A checked Messages body as a Chat Completions body (400 naming the field otherwise).
    ``counting``: a count_tokens body (no ``max_tokens``, nothing about sampling)."""
    check_fields(obj_, _COUNT_FIELDS if counting else _FIELDS, "",
                 ("model", "messages") if counting else ("model", "messages", "max_tokens"))
    chat: dict[str, Any] = {"model": obj_["model"], "messages": _chat_messages(obj_)}
    if obj_.get("tools"):
        chat["tools"] = [{"type": "function", "function": {
            "name": t["name"], **({"description": t["description"]} if t.get("description")
                                  else {}), "parameters": t["input_schema"]}}
            for t in obj_["tools"]]
    choice = obj_.get("tool_choice")
    if choice is not None:
        kind = choice["type"]
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(kind) or \
            {"type": "function", "function": {"name": choice.get("name")}}
        if choice.get("disable_parallel_tool_use") and chat.get("tools"):
            chat["parallel_tool_calls"] = False
    thinking, config = obj_.get("thinking"), obj_.get("output_config") or {}
    if config.get("effort") is not None:
        chat["reasoning_effort"] = _EFFORTS[config["effort"]]
    elif thinking is not None and thinking["type"] == "enabled":
        budget = thinking["budget_tokens"]
        chat["reasoning_effort"] = next((e for bound, e in _EFFORT_BOUNDS if budget < bound),
                                        "high")
    if config.get("format") is not None:
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": config["format"]["schema"]}}
    if counting:
        return chat
    chat["max_tokens"] = obj_["max_tokens"]
    for name in ("temperature", "top_p", "top_k"):
        if obj_.get(name) is not None:
            chat[name] = obj_[name]
    if obj_.get("stop_sequences"):
        chat["stop"] = list(obj_["stop_sequences"])
    user = (obj_.get("metadata") or {}).get("user_id")
    if user is not None:
        chat["user"] = user
    if obj_.get("stream"):
        # Usage is what message_delta reports: always ask for it.
        chat["stream"], chat["stream_options"] = True, {"include_usage": True}
    if obj_.get(EXTENSION_FIELD) is not None:
        chat[EXTENSION_FIELD] = obj_[EXTENSION_FIELD]
    return chat


def _chat_messages(obj_: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = obj_.get("system")
    if isinstance(system, list):
        system = "\n".join(b["text"] for b in system)
    if system:
        out.append({"role": "system", "content": system})
    for message in obj_["messages"]:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
        elif message["role"] == "assistant":
            out.append(_assistant(content))
        else:
            out.extend(_user(content))
    return out


def _assistant(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    calls = [{"id": b["id"], "type": "function",
              "function": {"name": b["name"], "arguments": json.dumps(b["input"])}}
             for b in blocks if b["type"] == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _user(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A user turn: its tool results first, each a ``tool`` message (Chat Completions wants them
    right after the assistant's calls), then the rest as one user message."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if block["type"] == "tool_result":
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                        "content": _result_text(block)})
        elif block["type"] == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif block["type"] == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
    if parts:
        simple = all(p["type"] == "text" for p in parts)
        out.append({"role": "user", "content": "\n".join(p["text"] for p in parts) if simple
                    and len(parts) == 1 else parts})
    return out


def _result_text(block: dict[str, Any]) -> str:
    """A tool result's content as the text a ``tool`` message holds (images are noted, not
    sent: a Chat Completions tool message takes text)."""
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        text = "\n".join(b["text"] if b["type"] == "text" else "[image]" for b in content)
    return f"[error] {text}" if block.get("is_error") else text


def _image_url(block: dict[str, Any]) -> str:
    source = block["source"]
    if source["type"] == "url":
        return source["url"]
    return f"data:{source['media_type']};base64,{source['data']}"


# -- translating the answer ----------------------------------------------------------------------
def _stop_reason(finish: Any, matched: Any, stops: tuple[str, ...]) -> tuple[str, str | None]:
    """Anthropic's ``(stop_reason, stop_sequence)`` for a chat ``finish_reason``."""
    if finish == "stop" and isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return _STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn", None


def _usage(usage: Any, estimate: int) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    def count(name: str, default: int) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    return {"input_tokens": count("prompt_tokens", estimate),
            "output_tokens": count("completion_tokens", 0)}


def _tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as the object ``tool_use.input`` must be (unparseable ones are
    kept whole under ``arguments`` rather than lost)."""
    if not isinstance(arguments, str) or not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def to_message(completion: Mapping[str, Any], *, model: str, stops: tuple[str, ...] = (),
               estimate: int = 0, message_id: str | None = None) -> dict[str, Any]:
    """A chat completion as an Anthropic ``message`` (its first choice)."""
    choice, message = first_choice(completion)
    content: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    for call in as_list(message.get("tool_calls")):
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            continue
        fn = call["function"]
        content.append({"type": "tool_use", "id": call.get("id") or new_id("toolu_"),
                        "name": fn.get("name") if isinstance(fn.get("name"), str) else "",
                        "input": _tool_input(fn.get("arguments"))})
    reason, sequence = _stop_reason(choice.get("finish_reason"), choice.get("stop_reason"), stops)
    return {"id": message_id or new_id("msg_"), "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": reason,
            "stop_sequence": sequence, "usage": _usage(completion.get("usage"), estimate)}


class MessagesStream(ChunkStream):
    """Chat chunks in, Anthropic stream events out: ``message_start`` and a ``ping`` first,
    then per block ``content_block_start`` / ``content_block_delta`` (``text_delta``,
    ``input_json_delta``) / ``content_block_stop``, and at the end ``message_delta`` (stop
    reason, usage) and ``message_stop``. A text block and each tool call are blocks of their own,
    in the order they arrive."""

    def __init__(self, *, model: str, stops: tuple[str, ...] = (), estimate: int = 0) -> None:
        super().__init__()
        self.model, self.stops, self.estimate = model, stops, estimate
        self.id = new_id("msg_")
        self._started = self._ended = False
        self._blocks = 0
        #: The open block: ("text", None) or ("tool", the chat tool-call index); None: none.
        self._open: tuple[str, Any] | None = None
        self._finish: Any = None
        self._matched: Any = None

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message = {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": self.estimate, "output_tokens": 0}}
        return sse_event("message_start", {"type": "message_start", "message": message}) + \
            sse_event("ping", {"type": "ping"})

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._open != ("text", None):
                out.append(self._open_block(("text", None), {"type": "text", "text": ""}))
            out.append(self._delta({"type": "text_delta", "text": text}))
        for call in as_list(delta.get("tool_calls")):
            if not isinstance(call, dict):
                continue
            index = call.get("index", 0)
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            if self._open != ("tool", index):
                name = fn.get("name") if isinstance(fn.get("name"), str) else ""
                out.append(self._open_block(("tool", index), {
                    "type": "tool_use", "id": call.get("id") or new_id("toolu_"),
                    "name": name, "input": {}}))
            arguments = fn.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        if choice.get("finish_reason") is not None:
            self._finish, self._matched = choice["finish_reason"], choice.get("stop_reason")
        return out

    def _open_block(self, which: tuple[str, Any], block: dict[str, Any]) -> bytes:
        closing = self._close_block()
        self._open = which
        self._blocks += 1
        return closing + sse_event("content_block_start", {
            "type": "content_block_start", "index": self._blocks - 1, "content_block": block})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse_event("content_block_delta", {"type": "content_block_delta",
                                                 "index": self._blocks - 1, "delta": delta})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse_event("content_block_stop", {"type": "content_block_stop",
                                                "index": self._blocks - 1})

    def finish(self) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        reason, sequence = _stop_reason(self._finish, self._matched, self.stops)
        return self._start() + self._close_block() + sse_event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": _usage(self._usage, self.estimate)}) + \
            sse_event("message_stop", {"type": "message_stop"})

    def error(self, message: str, code: str) -> bytes:
        self._ended = True
        kind = "timeout_error" if "timeout" in message else "api_error"
        return sse_event("error", {"type": "error", "error": {"type": kind, "message": message}})


class MessagesExchange:
    def __init__(self, model: str, stops: tuple[str, ...], estimate: int) -> None:
        self.model, self.stops, self.estimate = model, stops, estimate

    def answer(self, completion: dict[str, Any]) -> bytes:
        message = to_message(completion, model=self.model, stops=self.stops,
                             estimate=self.estimate)
        return json.dumps(message, ensure_ascii=False).encode()

    def stream(self) -> MessagesStream:
        return MessagesStream(model=self.model, stops=self.stops, estimate=self.estimate)


def estimate_tokens(chat: Mapping[str, Any]) -> int:
    """The prompt tokens of a translated body as the spend reservation counts them: characters
    of every message and tool definition / 4 (no tokenizer of the upstream's is at hand; images
    are not counted)."""
    return math.ceil(context_chars(chat) / 4)


def count_tokens(obj_: Mapping[str, Any]) -> dict[str, int]:
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": n}`` by :func:`estimate_tokens`."""
    return {"input_tokens": estimate_tokens(messages_to_chat(obj_, counting=True))}


def error_body(exc: APIError) -> bytes:
    kind = _ERROR_TYPES.get(exc.status, "api_error" if exc.status >= 500 else
                            "invalid_request_error")
    return json.dumps({"type": "error", "error": {"type": kind, "message": exc.message}}).encode()


def anthropic_authorization(headers: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer`` if sent, else the ``x-api-key`` the anthropic client sends."""
    authorization = headers.get("authorization")
    if authorization:
        return authorization
    key = headers.get("x-api-key")
    return f"Bearer {key}" if key else None


class MessagesAPI:
    name = "messages"

    def authorization(self, headers: Mapping[str, str]) -> str | None:
        return anthropic_authorization(headers)

    async def parse(self, ctx: RequestContext, obj_: dict[str, Any]
                    ) -> tuple[ChatRequest, MessagesExchange]:
        chat = messages_to_chat(obj_)
        request = parse_chat(chat, ctx.request.headers)
        stops = tuple(obj_.get("stop_sequences") or ())
        return request, MessagesExchange(obj_["model"], stops, estimate_tokens(request.body))

    def error_response(self, exc: APIError, headers: Mapping[str, str] | None = None
                       ) -> Response:
        return Response(error_body(exc), status_code=exc.status, media_type="application/json",
                        headers={**exc.headers, **(headers or {})})


MESSAGES = MessagesAPI()

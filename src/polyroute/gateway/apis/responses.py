"""OpenAI Responses (``POST /v1/responses``) in and out of the internal Chat Completions shape.

In: ``input`` (a string, or items: ``message`` items with ``input_text`` / ``output_text`` /
``input_image`` parts, ``function_call`` and ``function_call_output``), ``instructions`` (a
system message first), function ``tools`` in the Responses' flat shape and ``tool_choice``,
``reasoning.effort`` (``reasoning_effort``; ``xhigh`` as ``high``, ``none`` as ``minimal``),
``max_output_tokens`` (``max_completion_tokens``), ``temperature``, ``top_p``,
``parallel_tool_calls``, ``text.format`` (``response_format``), ``user`` /
``safety_identifier`` (``user``) — every field checked at the edge first. ``previous_response_id``
puts the kept conversation of that response (its input and output items, read from the store;
only the key that created it may continue it) before the new input; the previous
``instructions`` are not carried over, as OpenAI documents. Hosted tools (web search, file
search...), ``background`` and the Conversations API's ``conversation`` are refused with a 400:
nothing upstream could run them. ``reasoning`` items in the input are dropped (a Chat
Completions model cannot take them back).

Out: a completion becomes a Response object (``resp_...``: a ``message`` output item with one
``output_text`` part, a ``function_call`` item per tool call, ``status`` ``completed`` or
``incomplete`` with its reason, ``usage`` in input / output tokens); a chunk stream becomes the
Responses event sequence (:class:`ResponsesStream`, every event with its ``sequence_number``);
an error keeps the OpenAI shape. With ``store`` (the default, as for OpenAI) the answer is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from polyroute.gateway.apis.base import (
    ChunkStream,
    as_list,
    first_choice,
    new_id,
    one_of,
    sse_event,
)
from polyroute.gateway.body import EXTENSION_FIELD, ChatRequest, parse_chat
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.validate import (
    MAX_OUTPUT_TOKENS,
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
from polyroute.store import StoredResponse

if TYPE_CHECKING:
    from starlette.responses import Response

    from polyroute.gateway.context import RequestContext
    from polyroute.store import Store

__all__ = ["RESPONSES", "ResponsesAPI", "ResponsesExchange", "ResponsesStream",
           "items_to_messages", "load_response", "not_found", "output_items", "responses_to_chat"]

_EFFORTS = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium",
            "high": "high", "xhigh": "high"}
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _fail(message: str, param: str) -> APIError:
    return APIError(400, message, param=param, code="invalid_value")


# -- checking the request ------------------------------------------------------------------------
def _part(value: Any, param: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise _fail(f"Invalid '{param}': a content part must be an object with a 'type'.", param)
    kind = value["type"]
    if kind in ("input_text", "output_text"):
        obj(("text",), text=string)(value, param)
    elif kind == "refusal":
        obj(("refusal",), refusal=string)(value, param)
    elif kind == "input_image":
        obj(("image_url",), image_url=string, detail=string)(value, param)
    else:
        raise _fail(f"Invalid '{param}.type': content parts of type {kind!r} are not supported "
                    f"by this gateway (input_text, output_text, input_image, refusal).",
                    f"{param}.type")


_CONTENT = either("a string or an array of content parts", (str, string), (list, array(_part)))


def _item(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise _fail(f"Invalid '{param}': an input item must be an object.", param)
    kind = value.get("type", "message" if "role" in value else None)
    if kind == "message":
        check_fields(value, {"role": one_of("user", "assistant", "system", "developer"),
                             "content": _CONTENT, "id": string, "status": string},
                     f"{param}.", ("role", "content"))
    elif kind == "function_call":
        check_fields(value, {"call_id": string, "name": string, "arguments": string,
                             "id": string, "status": string},
                     f"{param}.", ("call_id", "name", "arguments"))
    elif kind == "function_call_output":
        check_fields(value, {"call_id": string, "output": _CONTENT, "id": string,
                             "status": string}, f"{param}.", ("call_id", "output"))
    elif kind == "reasoning":
        pass  # dropped in translation (see the module)
    else:
        raise _fail(f"Invalid '{param}.type': input items of type {kind!r} are not supported by "
                    f"this gateway (message, function_call, function_call_output).",
                    f"{param}.type")


def _tool(value: Any, param: str) -> None:
    if isinstance(value, dict) and value.get("type") != "function":
        raise _fail(f"Invalid '{param}.type': only function tools are supported by this "
                    f"gateway, got {value.get('type')!r}.", f"{param}.type")
    obj(("type", "name"), type=string, name=string, description=string, parameters=obj(),
        strict=boolean)(value, param)


def _tool_choice(value: Any, param: str) -> None:
    if isinstance(value, str):
        one_of("auto", "none", "required")(value, param)
        return
    if not isinstance(value, dict) or value.get("type") != "function":
        raise _fail(f"Invalid '{param}': expected auto, none, required or "
                    f'{{"type": "function", "name": ...}}.', param)
    obj(("type", "name"), type=string, name=string)(value, param)


def _background(value: Any, param: str) -> None:
    boolean(value, param)
    if value:
        raise _fail("Invalid 'background': background responses are not supported by this "
                    "gateway.", param)


def _conversation(value: Any, param: str) -> None:
    raise _fail("Invalid 'conversation': the Conversations API is not supported by this "
                "gateway; continue with previous_response_id.", param)


_FORMAT = obj(("type",), type=one_of("text", "json_object", "json_schema"), name=string,
              schema=obj(), strict=boolean, description=string)

_FIELDS: dict[str, Check] = {
    "model": string,
    "input": either("a string or an array of input items", (str, string),
                    (list, array(_item))),
    "instructions": string,
    "tools": array(_tool),
    "tool_choice": _tool_choice,
    "parallel_tool_calls": boolean,
    "reasoning": obj(effort=one_of(*_EFFORTS), summary=string),
    "max_output_tokens": integer(1, MAX_OUTPUT_TOKENS),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "store": boolean,
    "stream": boolean,
    "previous_response_id": string,
    "text": obj(format=_FORMAT, verbosity=string),
    "metadata": obj(),
    "user": string,
    "safety_identifier": string,
    "truncation": one_of("auto", "disabled"),
    "background": _background,
    "conversation": _conversation,
}


def check_request(body: Mapping[str, Any]) -> None:
    """400 naming the first field of a Responses body that is wrong."""
    check_fields(body, _FIELDS, "", ("model", "input"))
    if body["input"] == [] and not body.get("previous_response_id"):
        raise _fail("Invalid 'input': expected at least one input item.", "input")


# -- translating the request ---------------------------------------------------------------------
def input_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``input`` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [{"type": "message", **item} if "type" not in item else item for item in value]


def _parts_text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or p.get("refusal") or "" for p in content
                   if p["type"] != "input_image")


def _user_content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts = [{"type": "image_url", "image_url": {"url": p["image_url"],
                                                 **({"detail": p["detail"]}
                                                    if p.get("detail") else {})}}
             if p["type"] == "input_image" else {"type": "text", "text": _parts_text([p])}
             for p in content]
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def items_to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checked input items as Chat Completions messages: consecutive function calls (and the
    assistant text before them) become one assistant message with ``tool_calls``."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item["type"]
        if kind == "message":
            role = item["role"]
            if role in ("system", "developer"):
                out.append({"role": "system", "content": _parts_text(item["content"])})
            elif role == "assistant":
                out.append({"role": "assistant", "content": _parts_text(item["content"])})
            else:
                out.append({"role": "user", "content": _user_content(item["content"])})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
                last["content"] = last["content"] or None
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item["call_id"],
                        "content": _parts_text(item["output"])})
    return out


def responses_to_chat(body: Mapping[str, Any], history: list[dict[str, Any]] | None = None
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A checked Responses body (after the ``history`` items of its previous response) as a
    Chat Completions body, and the conversation's items so far (history + this input)."""
    items = [*(history or []), *input_items(body["input"])]
    messages = items_to_messages(items)
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    if body.get("tools"):
        chat["tools"] = [{"type": "function", "function": {
            k: t[k] for k in ("name", "description", "parameters", "strict") if k in t}}
            for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice is not None:
        chat["tool_choice"] = choice
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = _EFFORTS[effort]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if body.get(name) is not None:
            chat[name] = body[name]
    user = body.get("user") or body.get("safety_identifier")
    if user:
        chat["user"] = user
    fmt = (body.get("text") or {}).get("format")
    if fmt is not None and fmt["type"] != "text":
        chat["response_format"] = {"type": "json_object"} if fmt["type"] == "json_object" \
            else {"type": "json_schema", "json_schema": {
                k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
    if body.get("stream"):
        chat["stream"], chat["stream_options"] = True, {"include_usage": True}
    if body.get(EXTENSION_FIELD) is not None:
        chat[EXTENSION_FIELD] = body[EXTENSION_FIELD]
    return chat, items


# -- translating the answer ----------------------------------------------------------------------
def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] \
        if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": content}


def _call_item(item_id: str, call_id: str, name: str, arguments: str,
               status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def output_items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A chat completion's message as Responses output items."""
    out: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        out.append(_message_item(new_id("msg_"), message["content"]))
    for call in as_list(message.get("tool_calls")):
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            continue
        fn = call["function"]
        out.append(_call_item(new_id("fc_"), str(call.get("id") or new_id("call_")),
                              fn["name"] if isinstance(fn.get("name"), str) else "",
                              fn["arguments"] if isinstance(fn.get("arguments"), str) else ""))
    return out


def _usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None

    def count(where: Any, name: str) -> int:
        value = where.get(name) if isinstance(where, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    tokens_in, tokens_out = count(usage, "prompt_tokens"), count(usage, "completion_tokens")
    return {"input_tokens": tokens_in, "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
            "input_tokens_details": {"cached_tokens": count(usage.get("prompt_tokens_details"),
                                                            "cached_tokens")},
            "output_tokens_details": {"reasoning_tokens": count(
                usage.get("completion_tokens_details"), "reasoning_tokens")}}


@dataclass
class ResponsesExchange:
    """One Responses request: what its Response object echoes, its conversation so far, and
    where to keep the answer (``keep`` None: ``store: false``)."""

    body: Mapping[str, Any]
    items: list[dict[str, Any]]
    keep: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None
    id: str = field(default_factory=lambda: new_id("resp_"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def response(self, status: str, output: list[dict[str, Any]], *, usage: Any = None,
                 finish: Any = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
        """The Response object with ``output`` (a finish reason may make it incomplete)."""
        b = self.body
        reason = _INCOMPLETE.get(finish) if isinstance(finish, str) else None
        if status == "completed" and reason is not None:
            status = "incomplete"
        effort = (b.get("reasoning") or {}).get("effort")
        return {
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "model": b["model"], "output": output, "error": error,
            "incomplete_details": {"reason": reason} if status == "incomplete" else None,
            "instructions": b.get("instructions"), "tools": list(b.get("tools") or []),
            "tool_choice": b.get("tool_choice") or "auto",
            "parallel_tool_calls": b.get("parallel_tool_calls", True) is not False,
            "temperature": b.get("temperature"), "top_p": b.get("top_p"),
            "max_output_tokens": b.get("max_output_tokens"),
            "previous_response_id": b.get("previous_response_id"),
            "reasoning": {"effort": effort, "summary": None},
            "store": b.get("store", True) is not False,
            "text": b.get("text") or {"format": {"type": "text"}},
            "truncation": b.get("truncation") or "disabled", "metadata": b.get("metadata") or {},
            "user": b.get("user"), "background": False, "usage": _usage(usage)}

    def finished(self, output: list[dict[str, Any]], usage: Any, finish: Any
                 ) -> dict[str, Any]:
        """The final Response object, kept in the store when asked to."""
        response = self.response("completed", output, usage=usage, finish=finish)
        if self.keep is not None:
            self.keep(response, [*self.items, *output])
        return response

    def answer(self, completion: dict[str, Any]) -> bytes:
        choice, message = first_choice(completion)
        response = self.finished(output_items(message), completion.get("usage"),
                                 choice.get("finish_reason"))
        return json.dumps(response, ensure_ascii=False).encode()

    def stream(self) -> ResponsesStream:
        return ResponsesStream(self)


class ResponsesStream(ChunkStream):
    """Chat chunks in, Responses events out: ``response.created`` and ``response.in_progress``
    first; per output item ``response.output_item.added``, then for a message
    ``response.content_part.added``, ``response.output_text.delta``... ``.done``,
    ``response.content_part.done``, and for a tool call
    ``response.function_call_arguments.delta``... ``.done``; ``response.output_item.done``;
    last ``response.completed`` (or ``response.incomplete``) with the whole Response."""

    def __init__(self, exchange: ResponsesExchange) -> None:
        super().__init__()
        self.exchange = exchange
        self._seq = 0
        self._started = self._ended = False
        #: Output items so far (dicts, their text and arguments filled as deltas arrive).
        self._output: list[dict[str, Any]] = []
        #: Index in ``_output`` of the open item, and the chat tool-call index it is (None:
        #: the message).
        self._open: int | None = None
        self._calls: dict[Any, int] = {}
        self._finish: Any = None

    def _event(self, kind: str, **data: Any) -> bytes:
        event = sse_event(kind, {"type": kind, **data, "sequence_number": self._seq})
        self._seq += 1
        return event

    def _start(self) -> bytes:
        if self._started or self._ended:
            return b""
        self._started = True
        response = self.exchange.response("in_progress", [])
        return self._event("response.created", response=response) + \
            self._event("response.in_progress", response=response)

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._open is None or self._output[self._open]["type"] != "message":
                out.append(self._close())
                out.append(self._open_message())
            index = self._open
            part = self._output[index]["content"][0]
            part["text"] += text
            out.append(self._event("response.output_text.delta", item_id=self._output[index]["id"],
                                   output_index=index, content_index=0, delta=text,
                                   logprobs=[]))
        for call in as_list(delta.get("tool_calls")):
            if not isinstance(call, dict):
                continue
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            key = call.get("index", 0)
            key = key if isinstance(key, int | str) else 0
            if key not in self._calls:
                out.append(self._close())
                name = fn.get("name") if isinstance(fn.get("name"), str) else ""
                item = _call_item(new_id("fc_"), str(call.get("id") or new_id("call_")), name,
                                  "", status="in_progress")
                self._output.append(item)
                self._open = self._calls[key] = len(self._output) - 1
                out.append(self._event("response.output_item.added",
                                       output_index=self._open, item=dict(item)))
            index = self._calls[key]
            arguments = fn.get("arguments")
            if isinstance(arguments, str) and arguments:
                self._output[index]["arguments"] += arguments
                out.append(self._event("response.function_call_arguments.delta",
                                       item_id=self._output[index]["id"], output_index=index,
                                       delta=arguments))
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
        return out

    def _open_message(self) -> bytes:
        item = _message_item(new_id("msg_"), "", status="in_progress")
        self._output.append(item)
        self._open = index = len(self._output) - 1
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        added = self._event("response.output_item.added", output_index=index,
                            item={**item, "content": []})
        item["content"].append(part)
        return added + self._event("response.content_part.added", item_id=item["id"],
                                   output_index=index, content_index=0, part=dict(part))

    def _close(self) -> bytes:
        """End the open item with its ``.done`` events."""
        if self._open is None:
            return b""
        index, self._open = self._open, None
        item = self._output[index]
        item["status"] = "completed"
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            out += self._event("response.output_text.done", item_id=item["id"],
                               output_index=index, content_index=0, text=part["text"],
                               logprobs=[])
            out += self._event("response.content_part.done", item_id=item["id"],
                               output_index=index, content_index=0, part=dict(part))
        else:
            out += self._event("response.function_call_arguments.done", item_id=item["id"],
                               output_index=index, name=item["name"],
                               arguments=item["arguments"])
        return out + self._event("response.output_item.done", output_index=index,
                                 item=json.loads(json.dumps(item)))

    def finish(self) -> bytes:
        if self._ended:
            return b""
        out = self._start() + self._close()
        self._ended = True
        response = self.exchange.finished(self._output, self._usage, self._finish)
        kind = "response.completed" if response["status"] == "completed" else \
            "response.incomplete"
        return out + self._event(kind, response=response)

    def error(self, message: str, code: str) -> bytes:
        self._ended = True
        failed = self.exchange.response("failed", self._output,
                                        error={"code": "server_error", "message": message})
        return self._event("error", code=code, message=message, param=None) + \
            self._event("response.failed", response=failed)


# -- the API -------------------------------------------------------------------------------------
async def load_response(store: Store, response_id: str, key_id: str | None
                        ) -> StoredResponse | None:
    """The kept response ``response_id`` if the key ``key_id`` made it (else None: another
    key's response is as unknown as a missing one). The read waits for queued writes, so it
    runs in a worker thread."""
    stored = await anyio.to_thread.run_sync(store.get_response, response_id)
    return stored if stored is not None and stored.key_id == key_id else None


def not_found(response_id: str, param: str | None) -> APIError:
    return APIError(404 if param is None else 400,
                    f"Previous response with id '{response_id}' not found." if param else
                    f"Response with id '{response_id}' not found.", param=param,
                    code="previous_response_not_found" if param else "not_found")


class ResponsesAPI:
    name = "responses"

    def authorization(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    async def parse(self, ctx: RequestContext, body: dict[str, Any]
                    ) -> tuple[ChatRequest, ResponsesExchange]:
        check_request(body)
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        store, key_id = ctx.gw.store, ctx.rec.key_id
        if previous is not None:
            stored = await load_response(store, previous, key_id)
            if stored is None:
                raise not_found(previous, "previous_response_id")
            history = json.loads(stored.items)
        chat, items = responses_to_chat(body, history)
        exchange = ResponsesExchange(body, items)
        if body.get("store", True) is not False:
            def keep(response: dict[str, Any], conversation: list[dict[str, Any]]) -> None:
                store.put_response(StoredResponse(
                    response["id"], key_id, time.time(), body["model"],
                    json.dumps(conversation, ensure_ascii=False),
                    json.dumps(response, ensure_ascii=False)))

            exchange.keep = keep
        return parse_chat(chat, ctx.request.headers), exchange

    def error_response(self, exc: APIError, headers: Mapping[str, str] | None = None
                       ) -> Response:
        return error_response(exc, headers)


RESPONSES = ResponsesAPI()

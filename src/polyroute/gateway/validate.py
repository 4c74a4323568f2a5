"""Checking a chat-completions body the way OpenAI does, before any upstream call.

Why here and not at the backend: a request the gateway cannot read (a ``text`` part that is a
number, a ``max_tokens`` with 400 digits) would otherwise break routing, the spend reservation or
the record, and one an upstream refuses would cost a round trip per fallback candidate. So every
field OpenAI documents is checked against one table — its type, range or length — and refused
with a 400 whose ``param`` and ``code`` are OpenAI's (``invalid_type``,
``integer_above_max_value`` …). ``null`` means "the default" for every optional field, as it does
for OpenAI. Fields not in the table pass through untouched, so new OpenAI parameters keep working.

A message without ``content`` is left to the backend: some OpenAI-compatible servers accept it,
and the gateway reads only the content that is there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from polyroute.gateway.errors import APIError

#: Largest ``max_tokens`` / ``max_completion_tokens`` accepted: far above any model's output
#: window, and small enough that the spend reservation's arithmetic stays in floats.
MAX_OUTPUT_TOKENS = 10_000_000
#: OpenAI's limits on ``n``, ``stop`` and ``top_logprobs``.
MAX_N = 128
MAX_STOP = 4
MAX_TOP_LOGPROBS = 20
_INT64 = (-(2 ** 63), 2 ** 63 - 1)

#: A check raises :class:`APIError` for a bad ``value`` at ``param``.
Check = Callable[[Any, str], None]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a decimal", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _invalid_type(param: str, expected: str, value: Any) -> APIError:
    return APIError(400, f"Invalid type for '{param}': expected {expected}, but got "
                         f"{_type_name(value)} instead.", param=param, code="invalid_type")


def _short(value: float) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "…"


def number(lo: float, hi: float) -> Check:
    """A JSON number (an integer is fine) in [lo, hi]."""

    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid_type(param, "a decimal", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise APIError(400, f"Invalid '{param}': expected a finite number.", param=param,
                           code="invalid_value")
        _within(value, lo, hi, param, "decimal")

    return check


def _within(value: float, lo: float, hi: float, param: str, word: str) -> None:
    """OpenAI's range errors for a ``word`` (decimal / integer) outside [lo, hi]."""
    if value < lo:
        raise APIError(400, f"Invalid '{param}': {word} below minimum value. Expected a value "
                            f">= {lo}, but got {_short(value)} instead.", param=param,
                       code=f"{word}_below_min_value")
    if value > hi:
        raise APIError(400, f"Invalid '{param}': {word} above maximum value. Expected a value "
                            f"<= {hi}, but got {_short(value)} instead.", param=param,
                       code=f"{word}_above_max_value")


def integer(lo: int, hi: int) -> Check:
    """A JSON integer in [lo, hi] (``2.0`` is not one, as for OpenAI)."""

    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type(param, "an integer", value)
        _within(value, lo, hi, param, "integer")

    return check


def of_type(kind: type, expected: str) -> Check:
    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise _invalid_type(param, expected, value)

    return check


boolean = of_type(bool, "a boolean")
string = of_type(str, "a string")


def obj(required: tuple[str, ...] = (), **fields: Check) -> Check:
    """An object; the named ``fields`` are checked when present and not null, and the
    ``required`` ones must be present and not null."""

    def check(value: Any, param: str) -> None:
        if not isinstance(value, dict):
            raise _invalid_type(param, "an object", value)
        check_fields(value, fields, f"{param}.", required)

    return check


def array(item: Check | None = None, max_items: int | None = None) -> Check:
    """An array, each element passing ``item``, at most ``max_items`` long."""

    def check(value: Any, param: str) -> None:
        if not isinstance(value, list):
            raise _invalid_type(param, "an array", value)
        if max_items is not None and len(value) > max_items:
            raise APIError(400, f"Invalid '{param}': array too long. Expected an array with "
                                f"maximum length {max_items}, but got an array with length "
                                f"{len(value)} instead.", param=param,
                           code="array_above_max_length")
        if item is not None:
            for i, element in enumerate(value):
                item(element, f"{param}[{i}]")

    return check


def either(expected: str, *checks: tuple[type, Check]) -> Check:
    """The check for whichever JSON type ``value`` has; ``expected`` names them all."""

    def check(value: Any, param: str) -> None:
        for kind, inner in checks:
            if isinstance(value, kind) and not isinstance(value, bool):
                inner(value, param)
                return
        raise _invalid_type(param, expected, value)

    return check


def check_fields(body: Mapping[str, Any], table: Mapping[str, Check], prefix: str = "",
                 required: tuple[str, ...] = ()) -> None:
    """Run ``table``'s check on every field of ``body`` that is present and not null; a
    ``required`` field missing or null is a 400 of its own."""
    for name in required:
        if body.get(name) is None:
            if name in body:  # null: every check refuses it in its own words
                table[name](None, prefix + name)
            raise APIError(400, f"Missing required parameter: '{prefix}{name}'.",
                           param=prefix + name, code="missing_required_parameter")
    for name, check in table.items():
        value = body.get(name)
        if value is not None:
            check(value, prefix + name)


# -- messages ------------------------------------------------------------------------------------
_CONTENT_PART = obj(("type",), type=string)
_TEXT_PART = obj(("text",), text=string)
#: An assistant message with one of these may have ``"content": null``.
_CALLS = ("tool_calls", "function_call")


def _content_part(value: Any, param: str) -> None:
    _CONTENT_PART(value, param)
    if value["type"] == "text":
        _TEXT_PART(value, param)


_CONTENT = either("one of a string or an array of objects",
                  (str, string), (list, array(_content_part)))

_MESSAGE_FIELDS: dict[str, Check] = {
    "role": string,
    "content": _CONTENT,
    "name": string,
    "tool_calls": array(obj(id=string, type=string, function=obj(name=string,
                                                                   arguments=string))),
    "tool_call_id": string,
    "function_call": obj(name=string, arguments=string),
}


def _message(value: Any, param: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("role"), str):
        raise APIError(400, f"{param} must be an object with a 'role'", param=param,
                       code="invalid_type")
    check_fields(value, _MESSAGE_FIELDS, f"{param}.")
    if "content" in value and value["content"] is None and not (
            value["role"] == "assistant" and any(value.get(k) for k in _CALLS)):
        raise _invalid_type(f"{param}.content", "one of a string or an array of objects "
                            "(null only for an assistant message with tool_calls)", None)


def _messages(value: Any, param: str) -> None:
    if not isinstance(value, list) or not value:
        raise APIError(400, "'messages' must be a non-empty list of messages", param=param,
                       code="invalid_type" if not isinstance(value, list) else "empty_array")
    for i, message in enumerate(value):
        _message(message, f"{param}[{i}]")


def _model(value: Any, param: str) -> None:
    if not isinstance(value, str) or not value:
        raise APIError(400, "'model' must be a route profile or backend name", param=param)


# -- the request ---------------------------------------------------------------------------------
_STRING_OR_OBJECT = either("one of a string or an object", (str, string), (dict, obj()))

#: Every checked field of a chat-completions request, in the order they are checked.
CHAT_FIELDS: dict[str, Check] = {
    "model": _model,
    "messages": _messages,
    "stream": boolean,
    "stream_options": obj(include_usage=boolean),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "n": integer(1, MAX_N),
    "max_tokens": integer(1, MAX_OUTPUT_TOKENS),
    "max_completion_tokens": integer(1, MAX_OUTPUT_TOKENS),
    "presence_penalty": number(-2, 2),
    "frequency_penalty": number(-2, 2),
    "seed": integer(*_INT64),
    "stop": either("one of a string or an array of strings", (str, string),
                   (list, array(string, MAX_STOP))),
    "tools": array(obj(("type",), type=string)),
    "tool_choice": _STRING_OR_OBJECT,
    "parallel_tool_calls": boolean,
    "functions": array(obj(name=string)),
    "function_call": _STRING_OR_OBJECT,
    "logprobs": boolean,
    "top_logprobs": integer(0, MAX_TOP_LOGPROBS),
    "logit_bias": obj(),
    "response_format": obj(type=string),
    "user": string,
    "store": boolean,
    "metadata": obj(),
}

_REQUIRED = ("model", "messages")


def validate_chat(body: Mapping[str, Any]) -> None:
    """Raise a 400 :class:`APIError` naming the first field of ``body`` OpenAI would refuse."""
    for name in _REQUIRED:
        if body.get(name) is None:
            raise APIError(400, f"Missing required parameter: '{name}'.", param=name,
                           code="missing_required_parameter")
    check_fields(body, CHAT_FIELDS)

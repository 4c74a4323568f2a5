"""Recorded request/response pairs of the client APIs (``fixtures/<api>/*.json``, written from
the public API references) and the helpers their tests share.

Ids the gateway makes up (``msg_…``, ``resp_…``, ``fc_…``) are replaced, in order of first
appearance, by ``<msg_1>``, ``<msg_2>``, … so that a fixture can say which ids must be equal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures"
_MADE_UP = re.compile(r"^(msg|resp|fc)_[0-9a-f]{24}$")


def fixture_names(api: str, prefix: str = "") -> list[str]:
    return sorted(p.stem for p in (FIXTURES / api).glob(f"{prefix}*.json"))


def load(api: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / api / f"{name}.json").read_text())


def normalize(value: Any, seen: dict[str, str] | None = None) -> Any:
    """``value`` with made-up ids numbered and ``created_at`` replaced."""
    seen = {} if seen is None else seen
    if isinstance(value, dict):
        return {k: "<created_at>" if k == "created_at" else normalize(v, seen)
                for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, seen) for v in value]
    if isinstance(value, str) and _MADE_UP.match(value):
        prefix = value.split("_", 1)[0]
        if value not in seen:
            seen[value] = f"<{prefix}_{sum(k.startswith(prefix) for k in seen) + 1}>"
        return seen[value]
    return value


def chunks_to_sse(chunks: list[Any]) -> bytes:
    """The internal stream of ``chunks`` (``"[DONE]"`` as itself)."""
    return b"".join(b"data: " + (c.encode() if isinstance(c, str) else json.dumps(c).encode())
                    + b"\n\n" for c in chunks)


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """``[{"event": name, "data": object}, …]`` of a client stream."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append({"event": fields.get("event"), "data": json.loads(fields["data"])})
    return events


# -- fuzz strategies both APIs' tests share -------------------------------------------------------
FUZZ_SETTINGS = dict(deadline=None, derandomize=True, database=None, max_examples=300,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30),
                 st.floats(allow_nan=False), st.text(max_size=8))


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` three times in five, else a wrong-typed leaf, list or object."""
    return st.one_of(valid, valid, valid, leaf, st.lists(leaf, max_size=2),
                     st.dictionaries(st.text(max_size=4), leaf, max_size=2))


#: Internal chunks (and completions: ``message``) with hostile fields anywhere.
chunk = st.fixed_dictionaries({}, optional={
    "choices": mostly(st.lists(st.fixed_dictionaries({}, optional={
        "index": mostly(st.integers(0, 1)),
        "delta": mostly(st.fixed_dictionaries({}, optional={
            "content": mostly(st.text(max_size=4)),
            "tool_calls": mostly(st.lists(st.fixed_dictionaries({}, optional={
                "index": mostly(st.integers(0, 2)), "id": leaf,
                "function": mostly(st.fixed_dictionaries({}, optional={
                    "name": leaf, "arguments": mostly(st.text(max_size=4))}))}), max_size=2))})),
        "finish_reason": mostly(st.sampled_from(["stop", "length", "tool_calls"])),
        "stop_reason": leaf,
        "message": mostly(st.fixed_dictionaries({}, optional={
            "content": leaf, "tool_calls": mostly(st.lists(st.fixed_dictionaries({}, optional={
                "function": mostly(st.fixed_dictionaries({}, optional={
                    "name": leaf, "arguments": leaf})), "id": leaf}), max_size=2))}))}),
        max_size=2)),
    "usage": mostly(st.fixed_dictionaries({}, optional={
        "prompt_tokens": leaf, "completion_tokens": leaf, "prompt_tokens_details": leaf}))})


#: Anthropic Messages bodies, mostly of the right shape, hostile anywhere.
_block = st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking",
                                     "document"]))},
    optional={"text": mostly(st.text(max_size=10)), "id": mostly(st.text(max_size=4)),
              "name": mostly(st.text(max_size=4)), "input": mostly(st.just({"a": 1})),
              "tool_use_id": mostly(st.text(max_size=4)), "is_error": mostly(st.booleans()),
              "content": mostly(st.text(max_size=5) | st.lists(st.fixed_dictionaries(
                  {"type": mostly(st.sampled_from(["text", "image", "tool_use"])),
                   "text": mostly(st.text(max_size=5))}), max_size=2)),
              "source": mostly(st.fixed_dictionaries(
                  {"type": mostly(st.sampled_from(["base64", "url"]))},
                  optional={"media_type": mostly(st.text(max_size=5)),
                            "data": mostly(st.text(max_size=5)),
                            "url": mostly(st.text(max_size=5))}))})
_message = st.fixed_dictionaries(
    {"role": mostly(st.sampled_from(["user", "assistant"]))},
    optional={"content": mostly(st.text(max_size=10) | st.lists(_block, max_size=3))})
message_bodies = st.fixed_dictionaries(
    {"model": mostly(st.just("m")), "messages": mostly(st.lists(_message, max_size=3))},
    optional={"max_tokens": mostly(st.integers(-2, 10 ** 9)),
              "system": mostly(st.text(max_size=5) | st.lists(_block, max_size=2)),
              "tools": mostly(st.lists(st.fixed_dictionaries(
                  {"name": mostly(st.text(max_size=4))},
                  optional={"input_schema": mostly(st.just({})), "type": leaf}), max_size=2)),
              "tool_choice": mostly(st.fixed_dictionaries(
                  {"type": mostly(st.sampled_from(["auto", "any", "tool", "none"]))},
                  optional={"name": leaf, "disable_parallel_tool_use": leaf})),
              "thinking": mostly(st.fixed_dictionaries(
                  {"type": mostly(st.sampled_from(["enabled", "disabled", "adaptive"]))},
                  optional={"budget_tokens": mostly(st.integers(-5, 10 ** 8))})),
              "output_config": mostly(st.fixed_dictionaries({}, optional={
                  "effort": mostly(st.sampled_from(["low", "max"])),
                  "format": mostly(st.fixed_dictionaries({"type": leaf, "schema": leaf}))})),
              "stop_sequences": mostly(st.lists(st.text(max_size=3), max_size=6)),
              "temperature": mostly(st.floats(-1, 3)), "top_p": leaf, "top_k": leaf,
              "metadata": mostly(st.fixed_dictionaries({}, optional={"user_id": leaf})),
              "stream": mostly(st.booleans()), "polyroute": leaf})


#: Responses bodies, mostly of the right shape, hostile anywhere.
_part = st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["input_text", "output_text", "input_image", "refusal",
                                     "input_file"]))},
    optional={"text": mostly(st.text(max_size=5)), "image_url": mostly(st.text(max_size=5)),
              "detail": leaf, "refusal": mostly(st.text(max_size=3))})
_content = mostly(st.text(max_size=8) | st.lists(_part, max_size=3))
_item = st.fixed_dictionaries({}, optional={
    "type": mostly(st.sampled_from(["message", "function_call", "function_call_output",
                                    "reasoning", "item_reference"])),
    "role": mostly(st.sampled_from(["user", "assistant", "system", "developer"])),
    "content": _content, "call_id": mostly(st.text(max_size=3)),
    "name": mostly(st.text(max_size=3)), "arguments": mostly(st.text(max_size=5)),
    "output": _content, "id": leaf})
response_bodies = st.fixed_dictionaries(
    {"model": mostly(st.just("m")), "input": mostly(st.text(max_size=5) |
                                                    st.lists(_item, max_size=4))},
    optional={"instructions": mostly(st.text(max_size=5)),
              "tools": mostly(st.lists(st.fixed_dictionaries(
                  {"type": mostly(st.sampled_from(["function", "web_search"]))},
                  optional={"name": mostly(st.text(max_size=3)),
                            "parameters": mostly(st.just({})), "strict": leaf,
                            "description": leaf}), max_size=2)),
              "tool_choice": mostly(st.sampled_from(["auto", "none", "required", "x"]) |
                                    st.fixed_dictionaries({"type": mostly(st.just("function")),
                                                           "name": leaf})),
              "reasoning": mostly(st.fixed_dictionaries({}, optional={
                  "effort": mostly(st.sampled_from(["low", "xhigh", "none"])),
                  "summary": leaf})),
              "max_output_tokens": mostly(st.integers(-3, 10 ** 8)),
              "temperature": leaf, "top_p": leaf, "store": leaf, "stream": mostly(st.booleans()),
              "parallel_tool_calls": leaf, "user": leaf, "safety_identifier": leaf,
              "text": mostly(st.fixed_dictionaries({}, optional={"format": mostly(
                  st.fixed_dictionaries({"type": mostly(st.sampled_from(
                      ["text", "json_object", "json_schema"]))},
                      optional={"name": leaf, "schema": mostly(st.just({})),
                                "strict": leaf}))})),
              "metadata": leaf, "truncation": leaf, "background": leaf, "polyroute": leaf})

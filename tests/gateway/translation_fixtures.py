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

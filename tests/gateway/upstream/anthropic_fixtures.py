"""The recorded Anthropic pairs (``tests/gateway/fixtures/anthropic``) and a reader of translated
Chat Completions streams, shared by the translator tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def names(prefix: str, suffix: str = ".json") -> list[str]:
    return sorted(p.name for p in FIXTURES.glob(f"{prefix}*{suffix}")
                  if not p.name.endswith(".expected.json") or suffix == ".expected.json")


def chunks_of(sse: bytes) -> tuple[list[dict[str, Any]], bool]:
    """The JSON chunks of a Chat Completions SSE stream, and whether it ended with [DONE]."""
    out, done = [], False
    for event in sse.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
        if not data:
            continue
        payload = b"\n".join(data)
        if payload == b"[DONE]":
            done = True
            continue
        out.append(json.loads(payload))
    return out, done


def add_up(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client makes of the chunks: text, reasoning, tool calls, finish reason, usage."""
    text, reasoning, finish, usage = [], [], None, None
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        if chunk.get("usage") is not None:
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or []:
                seen = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                seen["id"] += call.get("id", "")
                seen["name"] += call.get("function", {}).get("name", "")
                seen["arguments"] += call.get("function", {}).get("arguments", "")
            finish = choice["finish_reason"] or finish
    return {"text": "".join(text), "reasoning": "".join(reasoning),
            "tool_calls": [calls[i] for i in sorted(calls)], "finish_reason": finish,
            "usage": usage}

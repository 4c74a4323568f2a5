"""An Anthropic Messages answer → a Chat Completions answer (and an error body → OpenAI's shape).

Why: everything after the forward path — the check that an answer is a chat completion, the cost
from ``usage``, the output guards, the cache and the recorder — reads Chat Completions. So:
text blocks are joined into ``content``; ``tool_use`` blocks become ``tool_calls`` whose
``arguments`` is the JSON string of their ``input``; thinking blocks become ``reasoning_content``
or are dropped (the backend's ``anthropic.thinking``); ``stop_reason`` maps to ``finish_reason``;
and ``usage`` is counted the OpenAI way: ``prompt_tokens`` is every input token, cached ones
included (Anthropic reports cache reads and writes apart from ``input_tokens``), with the cache
reads also in ``prompt_tokens_details.cached_tokens``.

Anything that is not a message with a list ``content`` raises :class:`UpstreamFormatError`
(a ``bad_response``: the next candidate is tried); unknown block types are skipped, as the API
reference asks of clients when it adds new ones.
"""

from __future__ import annotations

import json
import time
from typing import Any

from polyroute.gateway.upstream.errors import UpstreamFormatError

__all__ = ["FINISH_REASONS", "finish_reason", "to_chat_completion", "to_openai_error",
           "usage_of"]

#: Anthropic ``stop_reason`` → Chat Completions ``finish_reason``.
FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    """The finish reason for ``stop_reason``; ``stop`` for one the map does not know."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_of(usage: Any) -> dict[str, Any] | None:
    """Anthropic ``usage`` as Chat Completions ``usage``; None when there is none to read."""
    if not isinstance(usage, dict):
        return None
    cache_read = _count(usage, "cache_read_input_tokens")
    prompt = (_count(usage, "input_tokens") + cache_read
              + _count(usage, "cache_creation_input_tokens"))
    completion = _count(usage, "output_tokens")
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    if cache_read:
        out["prompt_tokens_details"] = {"cached_tokens": cache_read}
    return out


def to_chat_completion(message: Any, *, keep_thinking: bool) -> dict[str, Any]:
    """The chat completion for one Messages answer (already parsed JSON)."""
    if not isinstance(message, dict) or message.get("type") == "error":
        raise UpstreamFormatError("the answer is not an Anthropic message")
    content = message.get("content")
    if not isinstance(content, list):
        raise UpstreamFormatError("the answer has no list 'content'")
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamFormatError("a content block is not an object")
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise UpstreamFormatError("a text block has no string 'text'")
            texts.append(block["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise UpstreamFormatError("a tool_use block has no string id and name")
            calls.append({"id": block["id"], "type": "function", "function": {
                "name": block["name"],
                "arguments": json.dumps(block.get("input", {}), ensure_ascii=False,
                                        separators=(",", ":"))}})
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thinking.append(block["thinking"])
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        reply["tool_calls"] = calls
    if keep_thinking and thinking:
        reply["reasoning_content"] = "".join(thinking)
    out: dict[str, Any] = {
        "id": message["id"] if isinstance(message.get("id"), str) else "msg",
        "object": "chat.completion", "created": int(time.time()),
        "model": message["model"] if isinstance(message.get("model"), str) else None,
        "choices": [{"index": 0, "message": reply,
                     "finish_reason": finish_reason(message.get("stop_reason"))}],
    }
    usage = usage_of(message.get("usage"))
    if usage is not None:
        out["usage"] = usage
    return out


def to_openai_error(content: bytes) -> bytes:
    """An Anthropic error body (``{"type": "error", "error": {"type", "message"}}``) in the
    OpenAI shape a Chat Completions client reads; any other body as it is."""
    try:
        parsed = json.loads(content)
    except ValueError:
        return content
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return content
    kind = error.get("type") if isinstance(error.get("type"), str) else "api_error"
    return json.dumps({"error": {"message": error["message"], "type": kind, "param": None,
                                 "code": kind}}, ensure_ascii=False).encode()

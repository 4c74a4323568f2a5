"""A Chat Completions request body → an Anthropic Messages request body.

Why each rule:
- Anthropic takes the system prompt apart from the turns, so ``system`` and ``developer`` messages
  become the ``system`` text (in order, joined by blank lines).
- Turns are lists of content blocks and must alternate; a ``tool`` message is a user turn holding
  a ``tool_result`` block, so consecutive messages of one role are merged into one turn, with
  its ``tool_result`` blocks first (Anthropic refuses a result after text in the same turn).
- An assistant's ``tool_calls`` become ``tool_use`` blocks whose ``input`` is the parsed JSON of
  the call's ``arguments`` string.
- ``max_tokens`` is required there: the request's ``max_completion_tokens`` / ``max_tokens``,
  else the backend's ``default_max_tokens``.
- ``reasoning_effort`` becomes ``thinking`` with the budget the backend's map gives (none for an
  effort not in it). Anthropic wants the budget below ``max_tokens`` and at least 1024, and does
  not accept ``temperature`` / ``top_p`` with thinking, so the budget is cut to fit (thinking is
  left off when it cannot fit) and those two are not sent with it. Thinking is also left off a
  request that continues a tool-use turn: Anthropic then wants the turn's signed thinking block
  back, and a signature does not survive the trip through Chat Completions.
- ``temperature`` is 0–2 in Chat Completions and 0–1 here: it is capped at 1.

What Anthropic cannot express — several choices (``n`` > 1), log-probabilities, a JSON response
format, the legacy ``functions`` API, a content part that is neither text nor an image, a tool
that is not a function — raises :class:`UpstreamUnsupported`, so the request goes to the next
candidate instead of getting a silently different answer. Sampling knobs with no counterpart
(penalties, ``seed``, ``logit_bias``) and bookkeeping fields (``store``, ``metadata``,
``stream_options``) are not sent. The body was validated at the edge
(:mod:`~polyroute.gateway.validate`), but a part of it the validator does not look into is still
checked here before it is read.
"""

from __future__ import annotations

import json
from typing import Any

from polyroute.config import AnthropicConfig
from polyroute.gateway.upstream.errors import UpstreamUnsupported

__all__ = ["to_messages_request"]

#: Anthropic's smallest thinking budget.
MIN_THINKING_BUDGET = 1024


def to_messages_request(body: dict[str, Any], *, model: str, stream: bool,
                        settings: AnthropicConfig) -> dict[str, Any]:
    """The Messages request for the Chat Completions ``body``, sent to ``model``."""
    _refuse_unsupported(body)
    system, turns = _turns(body.get("messages") or [])
    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body, settings),
                           "messages": turns}
    if system:
        out["system"] = system
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [s for s in stop if isinstance(s, str)]
    thinking = None if _continues_tool_use(turns) else _thinking(
        body.get("reasoning_effort"), out["max_tokens"], settings)
    if thinking is not None:
        out["thinking"] = thinking
    else:
        if isinstance(body.get("temperature"), int | float):
            out["temperature"] = min(float(body["temperature"]), 1.0)
        if isinstance(body.get("top_p"), int | float):
            out["top_p"] = body["top_p"]
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        out["tools"] = [_tool(t) for t in tools]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if isinstance(body.get("n"), int) and body["n"] > 1:
        raise UpstreamUnsupported("n > 1: Anthropic returns one choice per request")
    if body.get("logprobs"):
        raise UpstreamUnsupported("logprobs: Anthropic does not return log-probabilities")
    if body.get("functions") or body.get("function_call"):
        raise UpstreamUnsupported("the legacy functions API: send tools instead")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise UpstreamUnsupported(f"response_format {fmt.get('type')!r}: not translated to "
                                  f"Anthropic")


def _max_tokens(body: dict[str, Any], settings: AnthropicConfig) -> int:
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return settings.default_max_tokens


def _thinking(effort: Any, max_tokens: int, settings: AnthropicConfig) -> dict[str, Any] | None:
    if not isinstance(effort, str) or effort not in settings.thinking_budgets:
        return None
    budget = min(settings.thinking_budgets[effort], max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _continues_tool_use(turns: list[dict[str, Any]]) -> bool:
    """The last turn answers the tool calls of the assistant turn before it."""
    return len(turns) >= 2 and turns[-2]["role"] == "assistant" and any(
        b.get("type") == "tool_use" for b in turns[-2]["content"]) and any(
        b.get("type") == "tool_result" for b in turns[-1]["content"])


# -- messages ------------------------------------------------------------------------------------
def _turns(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """The system text and the merged, alternating turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UpstreamUnsupported(f"messages[{i}] is not an object")
        role = message.get("role")
        if role in ("system", "developer"):
            text = _plain_text(message.get("content"), f"messages[{i}]")
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks, anthropic_role = _user_blocks(message.get("content"), f"messages[{i}]"), "user"
        elif role == "assistant":
            blocks, anthropic_role = _assistant_blocks(message, f"messages[{i}]"), "assistant"
        elif role == "tool":
            blocks, anthropic_role = [_tool_result(message, f"messages[{i}]")], "user"
        else:
            raise UpstreamUnsupported(f"messages[{i}]: role {role!r} has no Anthropic turn")
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # a result must come before any other block of its turn
            turn["content"].sort(key=lambda b: b.get("type") != "tool_result")
    return "\n\n".join(system), turns


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    """Content as a list of parts (a string is one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    raise UpstreamUnsupported(f"{where}.content is neither a string nor a list of parts")


def _plain_text(content: Any, where: str) -> str:
    texts = []
    for part in _parts(content, where):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise UpstreamUnsupported(f"{where}: a system message may hold only text")
        texts.append(part["text"])
    return "\n".join(texts)


def _text_block(part: dict[str, Any], where: str) -> dict[str, Any] | None:
    text = part.get("text") if part.get("type") == "text" else part.get("refusal")
    if not isinstance(text, str):
        raise UpstreamUnsupported(f"{where}: a text part without a string 'text'")
    return {"type": "text", "text": text} if text else None  # Anthropic refuses empty text


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    blocks = []
    for part in _parts(content, where):
        kind = part.get("type")
        if kind == "text":
            block = _text_block(part, where)
        elif kind == "image_url":
            block = _image(part.get("image_url"), where)
        else:
            raise UpstreamUnsupported(f"{where}: content part {kind!r} is not translated to "
                                      f"Anthropic")
        if block is not None:
            blocks.append(block)
    return blocks


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise UpstreamUnsupported(f"{where}: an image_url part without a string 'url'")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type.startswith("image/"):
            raise UpstreamUnsupported(f"{where}: an image data URL must be "
                                      f"data:image/<type>;base64,<data>")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise UpstreamUnsupported(f"{where}: an image URL must be http(s) or a data URL")


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks = []
    for part in _parts(message.get("content"), where):
        if part.get("type") not in ("text", "refusal"):
            raise UpstreamUnsupported(f"{where}: an assistant message may hold only text")
        block = _text_block(part, where)
        if block is not None:
            blocks.append(block)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise UpstreamUnsupported(f"{where}.tool_calls is not a list")
    for j, call in enumerate(calls):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{j}]"))
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(call.get("id"), str) \
            or not isinstance(function.get("name"), str):
        raise UpstreamUnsupported(f"{where}: a tool call needs an id and a function name")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamUnsupported(f"{where}: Anthropic needs a tool call's arguments to be a "
                                  f"JSON object")
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": parsed}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise UpstreamUnsupported(f"{where}: a tool message needs a tool_call_id")
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        block["content"] = content
    else:
        block["content"] = _user_blocks(content, where)
    return block


# -- tools ---------------------------------------------------------------------------------------
def _tool(tool: Any) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type") != "function" \
            or not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise UpstreamUnsupported("only function tools (with a name) are translated to Anthropic")
    out: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    schema = function.get("parameters")
    out["input_schema"] = schema if isinstance(schema, dict) else {"type": "object",
                                                                  "properties": {}}
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        out = {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) \
            and isinstance(choice["function"].get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise UpstreamUnsupported(f"tool_choice {choice!r} is not translated to Anthropic")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out

"""Cache lookup (before decide) and cache store (a hook on the response): ``polyroute/cache``.

Lookup: the request's partition (client key scope, profile, parameter fingerprint) and category;
the exact request first, then — embedding the routing text once, on the decider's thread, and
leaving its analysis on ``ctx`` for the decision to reuse — the nearest cached one within the
category's threshold. A hit ends the request here: the cached answer as JSON, or replayed as an
SSE stream (:func:`~polyroute.gateway.streaming.completion_to_sse`) for a streaming client;
recorded ``ok`` at no cost, with the original request's cost as the dollars saved.

Store: on a miss, a hook on the response keeps the answer when the request ended ``ok`` with a
complete answer (every choice finished with ``stop`` or a tool call; an answer cut at its length
cap, an error or a refusal is never cached). A stream relayed as it arrives is watched as it
goes (:attr:`RelayResponse.taps`) and, if it completed, its events are assembled into the one
completion they spell (:func:`sse_to_completion`) and kept once its record is written.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.cache import CacheKey, Hit, SemanticCache, cache_key
from polyroute.gateway.streaming import RelayResponse, StreamResult, completion_to_sse
from polyroute.signals import SignalInputs, SignalValues
from polyroute.store import OK

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext

#: Finish reasons of a complete answer (``length``: cut at the cap; ``content_filter``: withheld).
_COMPLETE = frozenset({"stop", "tool_calls", "function_call"})


def category_of(ctx: RequestContext) -> str | None:
    """The request's category: the ``domain`` signal's value when the config labels domains by
    example (the nearest above its threshold), else ``ctx.category`` (None: the cache's default
    category). The one place that decides it. Needs ``ctx.analysis`` when domains are set."""
    if ctx.category is not None or not ctx.gw.config.signals.domains or ctx.analysis is None:
        return ctx.category
    values = ctx.signals
    if values is None:  # no rules, so no signals stage: compute just this one
        chat = ctx.chat
        assert chat is not None
        values = ctx.signals = SignalValues(ctx.gw.signals, SignalInputs(body=chat.body,
                                                                        text=chat.text))
    values.inputs.embedding = ctx.analysis.embedding
    values.inputs.estimates = ctx.analysis.estimates
    ctx.category = values.get("domain")
    return ctx.category


def _cache(ctx: RequestContext) -> SemanticCache:
    cache = ctx.gw.cache
    assert cache is not None, "the cache stages run only when the cache is enabled"
    return cache


async def lookup(ctx: RequestContext) -> Response | None:
    gw, rec, chat, route = ctx.gw, ctx.rec, ctx.chat, ctx.route
    assert chat is not None and route is not None
    cache = _cache(ctx)
    if gw.config.signals.domains and ctx.analysis is None:  # the category needs the embedding
        ctx.analysis = await gw.decider.analyse(chat.text)
    category = cache.category(category_of(ctx))
    key = cache_key(scope=cache.scope(rec.key_id), profile=route.name, category=category,
                    body=chat.body, space=gw.pipeline.featurizer.id,
                    preference=None if chat.preference is None
                    else dataclasses.asdict(chat.preference))
    hit = cache.exact(key)
    if hit is None:
        if ctx.analysis is None:  # one embedding for the cache, the rules and the decision
            ctx.analysis = await gw.decider.analyse(chat.text)
        hit = cache.nearest(key, chat.text, ctx.analysis.embedding)
    if hit is None:
        gw.metrics.cache_misses.labels(category).inc()

        async def store(response: Response) -> Response:
            if isinstance(response, RelayResponse):
                _watch(ctx, key, response)
            else:
                keep(ctx, key)
            return response

        ctx.after.append(("cache_store", store))
        return None
    return _answer(ctx, hit, category)


def _answer(ctx: RequestContext, hit: Hit, category: str) -> Response:
    """End the request with a cached answer (recorded before it is sent)."""
    gw, rec, chat = ctx.gw, ctx.rec, ctx.chat
    assert chat is not None
    rec.ended_by = "cache: hit (exact)" if hit.exact else \
        f"cache: hit (similarity {hit.similarity:.2f})"
    rec.saved = hit.cost
    rec.extra_headers["x-polyroute-cached-model"] = hit.model
    content, media_type = hit.answer, "application/json"
    headers = rec.headers()
    if chat.stream:
        content = completion_to_sse(json.loads(hit.answer), include_usage=chat.wants_usage)
        media_type = "text/event-stream"
        headers["cache-control"] = "no-cache"
    rec.finish(OK, 200)
    gw.metrics.cache_hits.labels(category, "exact" if hit.exact else "semantic").inc()
    gw.metrics.cache_saved.labels(category).inc(hit.cost)
    return Response(content, status_code=200, media_type=media_type, headers=headers)


def keep(ctx: RequestContext, key: CacheKey, streamed: dict[str, Any] | None = None) -> bool:
    """Cache the request's answer (``streamed``: the one a relayed stream spelled) if it ended
    ``ok`` and is complete; True if kept."""
    rec, chat, answer = ctx.rec, ctx.chat, ctx.rec.returned
    if rec.status != OK or ctx.analysis is None or chat is None or rec.chosen is None:
        return False
    if streamed is not None:
        completion, content = streamed, json.dumps(streamed, ensure_ascii=False).encode()
    elif answer is None or answer.status != 200:
        return False
    else:
        try:
            completion, content = json.loads(answer.content), answer.content
        except ValueError:
            return False
    if not _complete(completion):
        return False
    _cache(ctx).put(key, chat.text, ctx.analysis.embedding, content, model=rec.chosen,
                    cost=rec.cost)
    return True


def _watch(ctx: RequestContext, key: CacheKey, response: RelayResponse) -> None:
    """Collect a relayed stream's events; keep its answer if it completed (after its record,
    in the same synchronous step, so before the request counts as finished)."""
    events = bytearray()
    response.taps.append(events.extend)

    def ended(result: StreamResult) -> None:
        if result.completed and result.error is None:
            completion = sse_to_completion(bytes(events))
            if completion is not None:
                keep(ctx, key, completion)

    response.ended.append(ended)


def sse_to_completion(data: bytes) -> dict[str, Any] | None:
    """The chat completion an OpenAI-style SSE stream spells (the inverse of
    :func:`~polyroute.gateway.streaming.completion_to_sse`); None if it does not parse or
    never said ``[DONE]``.

    Per choice index: the role, the content and refusal deltas concatenated, tool calls merged
    by their ``index`` (name and arguments concatenated), the last ``finish_reason``; ``usage``
    if a chunk carried it; ``id``, ``created``, ``model``, ``system_fingerprint`` from the first
    chunk that has them.
    """
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    done = False
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(chunk, dict):
            return None
        for k in ("id", "created", "model", "system_fingerprint"):
            if k in chunk and k not in head:
                head[k] = chunk[k]
        if isinstance(chunk.get("usage"), dict):
            head["usage"] = chunk["usage"]
        for c in chunk.get("choices") or ():
            if not isinstance(c, dict):
                return None
            choice = choices.setdefault(int(c.get("index", 0)), {
                "message": {"role": "assistant", "content": None}, "finish_reason": None})
            _merge_delta(choice["message"], c.get("delta") or {})
            if c.get("finish_reason") is not None:
                choice["finish_reason"] = c["finish_reason"]
    if not done or not choices:
        return None
    return {**{k: v for k, v in head.items() if k != "usage"}, "object": "chat.completion",
            "choices": [{"index": i, **choices[i]} for i in sorted(choices)],
            **({"usage": head["usage"]} if "usage" in head else {})}


def _merge_delta(message: dict[str, Any], delta: dict[str, Any]) -> None:
    if delta.get("role"):
        message["role"] = delta["role"]
    for field in ("content", "refusal"):
        if isinstance(delta.get(field), str):
            message[field] = (message.get(field) or "") + delta[field]
    for call in delta.get("tool_calls") or ():
        calls = message.setdefault("tool_calls", [])
        i = int(call.get("index", len(calls)))
        while len(calls) <= i:
            calls.append({"id": None, "type": "function",
                          "function": {"name": "", "arguments": ""}})
        target = calls[i]
        if call.get("id"):
            target["id"] = call["id"]
        if call.get("type"):
            target["type"] = call["type"]
        fn = call.get("function") or {}
        target["function"]["name"] += fn.get("name") or ""
        target["function"]["arguments"] += fn.get("arguments") or ""


def _complete(completion: Any) -> bool:
    choices = completion.get("choices") if isinstance(completion, dict) else None
    return bool(choices) and all(isinstance(c, dict) and c.get("finish_reason") in _COMPLETE
                                 for c in choices)

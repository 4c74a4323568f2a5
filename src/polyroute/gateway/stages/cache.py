"""Cache lookup (before decide) and cache store (a hook on the response): ``polyroute/cache``.

Lookup: the request's partition (client key scope, profile, parameter fingerprint) and category;
the exact request first, then — embedding the routing text once, on the decider's thread, and
leaving the embedding on ``ctx`` for the decision to reuse — the nearest cached one within the
category's threshold. A hit ends the request here: the cached answer as JSON, or replayed as an
SSE stream (:func:`~polyroute.gateway.streaming.completion_to_sse`) for a streaming client;
recorded ``ok`` at no cost, with the original request's cost as the dollars saved.

Store: on a miss, a hook on the response keeps the answer when the request ended ``ok`` with a
complete answer in hand (every choice finished with ``stop`` or a tool call; an answer cut at
its length cap, an error or a refusal is never cached). A stream relayed as it arrives is not
kept (its answer is never assembled in the gateway); a buffered one (cascade, top-k) is.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.cache import CacheKey, Hit, SemanticCache, cache_key
from polyroute.gateway.streaming import completion_to_sse
from polyroute.store import OK

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext

#: Finish reasons of a complete answer (``length``: cut at the cap; ``content_filter``: withheld).
_COMPLETE = frozenset({"stop", "tool_calls", "function_call"})


def category_of(ctx: RequestContext) -> str | None:
    """The request's category as the signals left it (None: the cache's default category).

    The one place that decides it, so the domain signal connects here.
    """
    return ctx.category


def _cache(ctx: RequestContext) -> SemanticCache:
    cache = ctx.gw.cache
    assert cache is not None, "the cache stages run only when the cache is enabled"
    return cache


async def lookup(ctx: RequestContext) -> Response | None:
    gw, rec, chat, route = ctx.gw, ctx.rec, ctx.chat, ctx.route
    assert chat is not None and route is not None
    cache = _cache(ctx)
    category = cache.category(category_of(ctx))
    key = cache_key(scope=cache.scope(rec.key_id), profile=route.name, category=category,
                    body=chat.body, space=gw.pipeline.featurizer.id,
                    preference=None if chat.preference is None
                    else dataclasses.asdict(chat.preference))
    hit = cache.exact(key)
    if hit is None:
        ctx.embedding = await gw.decider.embed(chat.text)
        hit = cache.nearest(key, chat.text, ctx.embedding)
    if hit is None:
        gw.metrics.cache_misses.labels(category).inc()

        async def store(response: Response) -> Response:
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


def keep(ctx: RequestContext, key: CacheKey) -> bool:
    """Cache the request's answer if it ended ``ok`` with a complete answer; True if kept."""
    rec, chat, answer = ctx.rec, ctx.chat, ctx.rec.returned
    if rec.status != OK or answer is None or answer.status != 200 or ctx.embedding is None \
            or chat is None or rec.chosen is None:
        return False
    try:
        completion = json.loads(answer.content)
    except ValueError:
        return False
    if not _complete(completion):
        return False
    _cache(ctx).put(key, chat.text, ctx.embedding, answer.content, model=rec.chosen,
                    cost=rec.cost)
    return True


def _complete(completion: Any) -> bool:
    choices = completion.get("choices") if isinstance(completion, dict) else None
    return bool(choices) and all(isinstance(c, dict) and c.get("finish_reason") in _COMPLETE
                                 for c in choices)

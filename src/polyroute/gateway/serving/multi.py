"""What the two multi-call strategies (cascade, top-k) share: every call is made non-streamed.

A streamed request to either gets the final answer replayed as SSE once the cascade or merge is
done (:func:`~polyroute.gateway.streaming.completion_to_sse`): a cascade must see the whole cheap
answer before deciding whether to escalate, and a merge needs every member's answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.gateway.cascade import MultiCallResult
from polyroute.gateway.disconnect import unless_client_leaves
from polyroute.gateway.forward import AllFailed
from polyroute.gateway.serving.base import answered, api_error

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext

Run = Callable[["RequestContext", dict[str, Any]], Awaitable[MultiCallResult]]


async def serve_multi(ctx: RequestContext, run: Run, header: str) -> Response:
    """Run the calls (``run``), label them in ``header``, and answer."""
    chat = ctx.chat
    assert chat is not None
    body = chat.body if not chat.stream else {
        k: v for k, v in chat.body.items() if k not in ("stream", "stream_options")}

    async def calls() -> MultiCallResult:
        try:
            result = await run(ctx, body)
        except AllFailed as exc:
            raise api_error(exc) from None
        ctx.rec.extra_headers[header] = result.label
        return result

    result = await unless_client_leaves(ctx.request, calls(), ctx.gw.cutting)
    return answered(ctx.rec, result, stream=chat.stream, include_usage=chat.wants_usage)

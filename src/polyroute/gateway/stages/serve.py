"""Serve: hand the decided request to the strategy of its call shape (``gateway/serving``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from polyroute.gateway.serving import strategy_for

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


async def run(ctx: RequestContext) -> Response:
    return await strategy_for(ctx.serving).serve(ctx)

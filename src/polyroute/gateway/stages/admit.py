"""Admit: a draining gateway takes no new requests (503, so clients retry elsewhere)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyroute.gateway.errors import APIError

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


async def run(ctx: RequestContext) -> None:
    if ctx.gw.draining:
        raise APIError(503, "the gateway is shutting down; retry (another instance, or this "
                            "one once restarted)", code="gateway_draining",
                       headers={"retry-after": "1", "connection": "close"})

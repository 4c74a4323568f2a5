"""Admit: a draining gateway takes no new requests (503, so clients retry elsewhere), nor does
one whose store cannot take more records (its database unreachable, its queue full).

Why refuse rather than queue: every request the gateway answers has its record queued, and the
queue is kept in order until the database is back; past ``store.queue_limit`` the only way to
keep that promise within bounded memory is not to take the request. Such a refusal is counted
(``polyroute_store_refused_requests``), never stored: storing it would grow the full queue.
"""

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
    if ctx.gw.store.saturated:
        ctx.rec.unrecorded = True
        ctx.gw.metrics.store_refusals.inc()
        raise APIError(503, "the gateway cannot reach its database and its queue of records "
                            "still to write is full; retry shortly (or another instance)",
                       code="store_unavailable", headers={"retry-after": "1"})

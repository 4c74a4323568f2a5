"""Parse: read and check the body (translated by the client's API into the internal request),
resolve the ``model`` field to a route, open the record.

After this stage the request has a start row (so a crash cannot lose it), its route, and has
passed the key's cheap spend check (the reservation follows the decision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyroute.gateway.body import parse_chat, parse_object, read_body

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


async def run(ctx: RequestContext) -> None:
    gw, rec, server = ctx.gw, ctx.rec, ctx.gw.config.server
    raw = await read_body(ctx.request, server.max_body_bytes, server.body_timeout)
    obj = parse_object(raw)
    if ctx.api is None:
        chat = ctx.chat = parse_chat(obj, ctx.request.headers)
    else:  # the client's API translates its body into the internal request
        chat, ctx.exchange = await ctx.api.parse(ctx, obj)
        ctx.chat = chat
    rec.requested_model, rec.stream, rec.text = chat.model, chat.stream, chat.text
    route = ctx.route = gw.resolve(chat.model)
    rec.route = route.name
    rec.profile = route.name if route.profile is not None else None
    await gw.spend.check(ctx.key)  # the cheap check: spent + reserved; the reservation follows
    rec.start()

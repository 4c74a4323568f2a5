"""Signals: gather what the request's signals read (body, routing text, key, headers).

The values themselves are computed on first use and remembered (``SignalValues``), so a signal
no rule reads costs nothing and one that several rules read is computed once. Those that need
the router's embedding or estimates become computable when the rules stage obtains them.
Only gateways with rules or named routes run this stage (``stages.pipeline_for``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyroute.signals import SignalInputs, SignalValues

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


async def run(ctx: RequestContext) -> None:
    gw, chat, key = ctx.gw, ctx.chat, ctx.key
    assert chat is not None
    inputs = SignalInputs(body=chat.body, text=chat.text,
                          key_id=key.id if key is not None else None,
                          key_tags=frozenset(key.tags) if key is not None else frozenset(),
                          headers=ctx.request.headers)
    ctx.signals = SignalValues(gw.signals, inputs)

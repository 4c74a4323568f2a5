"""Rate limit: a key with ``rpm``/``tpm`` is refused (429 + Retry-After) over its minute's share.

Runs right after parse (the request has its record, and its prompt's tokens can be estimated),
before any routing work; only configs with a rate-limited key have this stage. The window rule
is in ``gateway/shared/base.py`` (``RateLimits``); with ``shared:`` it holds over every replica.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyroute.gateway.stages.reserve import prompt_tokens

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


async def run(ctx: RequestContext) -> None:
    rates = ctx.gw.rates
    if rates.limits(ctx.key):
        assert ctx.key is not None and ctx.chat is not None
        ctx.rec.rate = await rates.admit(ctx.key, prompt_tokens(ctx.chat.body))

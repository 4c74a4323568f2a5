"""A cascade: the chain's cheap model first, escalating while its answer looks weak
(the calls themselves: :mod:`polyroute.gateway.cascade`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.gateway.cascade import MultiCallResult, run_cascade
from polyroute.gateway.serving.base import Bound
from polyroute.gateway.serving.multi import serve_multi
from polyroute.policies import CascadeDecision

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


def _chain(ctx: RequestContext) -> CascadeDecision:
    decision = ctx.multi
    assert isinstance(decision, CascadeDecision)
    return decision


class CascadeStrategy:
    def answering(self, ctx: RequestContext) -> set[str]:
        decision = _chain(ctx)
        return {c.model for c in ctx.rec.candidates} | set(decision.fallbacks) | \
            set(decision.chain)

    def reservation(self, ctx: RequestContext, one_call: float, bound: Bound,
                    tokens_out: int) -> float:
        return len(_chain(ctx).chain) * one_call  # it may call every step

    async def serve(self, ctx: RequestContext) -> Response:
        async def run(ctx: RequestContext, body: dict[str, Any]) -> MultiCallResult:
            assert ctx.plan is not None and ctx.chat is not None
            return await run_cascade(ctx.gw, _chain(ctx), ctx.plan.scorer, ctx.chat.text, body,
                                     ctx.rec.id, ctx.rec.attempts, ctx.rec.paid)

        return await serve_multi(ctx, run, "x-polyroute-cascade")

"""A top-k set: its members asked in parallel, their answers merged by the aggregator backend
(the calls themselves: :mod:`polyroute.gateway.aggregate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.gateway.aggregate import run_topk
from polyroute.gateway.cascade import MultiCallResult
from polyroute.gateway.serving.base import Bound
from polyroute.gateway.serving.multi import serve_multi
from polyroute.policies import SetDecision

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


def _set(ctx: RequestContext) -> SetDecision:
    decision = ctx.multi
    assert isinstance(decision, SetDecision)
    return decision


class TopKStrategy:
    def answering(self, ctx: RequestContext) -> set[str]:
        decision = _set(ctx)
        names = {c.model for c in ctx.rec.candidates} | set(decision.fallbacks) | \
            set(decision.members)
        if ctx.plan is not None and ctx.plan.aggregator is not None:
            names.add(ctx.plan.aggregator)
        return names

    def reservation(self, ctx: RequestContext, one_call: float, bound: Bound,
                    tokens_out: int) -> float:
        """Every member, plus the merge (whose prompt carries the members' answers)."""
        decision = _set(ctx)
        total = len(decision.members) * one_call
        aggregator = ctx.plan.aggregator if ctx.plan is not None else None
        if decision.aggregate and aggregator is not None and aggregator in ctx.gw.backends:
            total += bound(aggregator, len(decision.members) * tokens_out)
        return total

    async def serve(self, ctx: RequestContext) -> Response:
        async def run(ctx: RequestContext, body: dict[str, Any]) -> MultiCallResult:
            assert ctx.plan is not None and ctx.plan.aggregator is not None
            assert ctx.chat is not None
            return await run_topk(ctx.gw, _set(ctx), ctx.plan.aggregator, ctx.chat.text, body,
                                  ctx.rec.id, ctx.rec.attempts, ctx.rec.paid)

        return await serve_multi(ctx, run, "x-polyroute-set")

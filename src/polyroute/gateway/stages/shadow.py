"""Shadow: a profile's (or key's) default model serves; the routed choice is only recorded.

Runs after ``decide``. The routed ranking moves behind the served model (which answers, the
router's choices left as its fallbacks), and the record's ``explain.shadow`` keeps what the router
chose, with its estimates, for ``polyroute report``. A sampled request with a complete answer
registers an after-hook that starts the background comparison (:mod:`polyroute.gateway.shadow`)
once the client's answer exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from polyroute.config import ShadowConfig
from polyroute.gateway.shadow import is_sampled, same_model
from polyroute.store import Candidate

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


def shadow_of(ctx: RequestContext) -> ShadowConfig | None:
    """The shadow setting that applies: the key's, else the profile's (None: routing decides)."""
    if ctx.route is None or ctx.route.profile is None:
        return None  # a backend named directly is served as asked
    if ctx.key is not None and ctx.key.shadow is not None:
        return ctx.key.shadow
    return ctx.route.profile.shadow


async def run(ctx: RequestContext) -> None:
    shadow = shadow_of(ctx)
    if shadow is None or ctx.serving != "single":
        return
    gw, rec, chat = ctx.gw, ctx.rec, ctx.chat
    assert chat is not None
    routed = rec.candidates
    top = routed[0]
    by_model = {c.model: c for c in routed}
    served = by_model.get(shadow.serve, Candidate(shadow.serve))
    rec.candidates = (served, *(c for c in routed if c.model != shadow.serve))
    sampled = not chat.stream and is_sampled(rec.id, shadow)
    rec.explain["shadow"] = {
        "served": shadow.serve, "routed": top.model,
        "routed_estimated_quality": top.estimated_quality,
        "routed_estimated_cost": top.estimated_cost,
        "served_estimated_quality": served.estimated_quality,
        "served_estimated_cost": served.estimated_cost,
        "ranking": [c.model for c in routed], "sampled": sampled}
    gw.metrics.shadow_decisions.labels(shadow.serve, top.model).inc()
    if not sampled:
        return
    body = chat.body

    async def compare_after(response: Response) -> Response:
        answer = rec.returned
        if answer is None or answer.status != 200 or rec.chosen is None:
            return response  # nothing complete to compare with
        served_cost = rec.cost if rec.done else None
        if top.model == rec.chosen:
            gw.store.record_shadow_comparison(same_model(rec.id, rec.profile, top.model,
                                                         served_cost))
            gw.metrics.shadow_comparisons.labels("same").inc()
        else:
            gw.shadow.schedule(request_id=rec.id, profile=rec.profile, prompt=chat.text,
                               body=body, served=rec.chosen, served_answer=answer,
                               routed=top.model, served_cost=served_cost, shadow=shadow)
        return response

    ctx.after.append(("shadow_compare", compare_after))

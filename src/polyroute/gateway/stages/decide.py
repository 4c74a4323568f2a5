"""Decide: the profile's plan for this request, its policy, and the router's ranked candidates.

A backend named directly is its own single candidate; a profile asks the decider (on its worker
thread) under the plan's policy. A per-request λ keeps the profile's kind; a budget or floor
routes plainly. When an earlier stage has settled the candidates (``ctx.settled``: a
conversation's turn served on its pinned model), the policy is still worked out and recorded but
nothing is ranked, and the router's encoder is not run.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from polyroute.gateway.profiles import rebalance, with_preference
from polyroute.policies import Policy, Preference, policy_for
from polyroute.store import Candidate

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


def _effort_allowed(ctx: RequestContext, allowed: tuple[str, ...] | None,
                    asked: object) -> tuple[str, ...] | None:
    """The candidates a request's own ``reasoning_effort`` leaves: that level's candidates
    when some backend offers it and the profile lets the client choose (``effort: client``);
    otherwise the profile's choice stands, and the router picks the level."""
    gw, rec = ctx.gw, ctx.rec
    assert ctx.route is not None and ctx.route.profile is not None
    who = ctx.route.profile.effort
    levels = {b.name: b.config.effort for b in gw.backends.values()
              if b.config.effort is not None}
    offered = [n for n, lvl in levels.items() if lvl == asked
               and (allowed is None or n in allowed)]
    if who == "router" or not offered:
        rec.explain["effort"] = (f"the client asked for {asked!r} effort; "
                                 + ("the profile lets the router choose" if who == "router"
                                    else "no candidate offers that level"))
        return allowed
    rec.explain["effort"] = f"the client asked for {asked!r} effort: only those candidates"
    return tuple(offered)


async def run(ctx: RequestContext) -> None:
    gw, rec, route, chat = ctx.gw, ctx.rec, ctx.route, ctx.chat
    assert route is not None and chat is not None
    if route.profile is None:
        assert route.backend is not None
        rec.candidates = (Candidate(route.backend),)
        return
    policy = choose_policy(ctx)
    plan = ctx.plan
    if ctx.settled is not None:  # an earlier stage chose the candidates (a pinned conversation)
        rec.candidates = ctx.settled
        gw.metrics.decisions.labels(route.name, ctx.settled[0].model).inc()
        return
    allowed = route.allowed
    asked = chat.body.get("reasoning_effort")
    if asked is not None:
        allowed = _effort_allowed(ctx, allowed, asked)
    decision = ctx.decision = await gw.decider.decide(
        chat.text, policy, allowed, multi_call=plan is not None and plan.multi_call,
        analysis=ctx.analysis)
    rec.candidates, rec.decision_ms = decision.candidates, decision.decision_ms
    notes = {c.model: gw.decider.estimated_note[c.model] for c in decision.candidates
             if c.model in gw.decider.estimated_note}
    if notes:
        rec.explain["estimates"] = notes
    gw.metrics.decision_latency.observe(decision.decision_ms / 1000)
    gw.metrics.decisions.labels(route.name, decision.candidates[0].model).inc()


def choose_policy(ctx: RequestContext) -> Policy:
    """The request's plan and policy (on ``ctx``, and recorded), worked out once: a stage before
    the decision that needs them (the conversation's pin weighs a move under the policy's λ)
    calls this, and the decision then finds them made."""
    if ctx.policy is not None:
        return ctx.policy
    gw, rec, route, chat = ctx.gw, ctx.rec, ctx.route, ctx.chat
    assert route is not None and chat is not None
    assert route.profile is not None and route.policy is not None and route.plan is not None
    plan = ctx.plan = with_preference(route.profile, route.plan, chat.preference)
    policy = ctx.policy = plan.policy if plan is not None else \
        policy_for(chat.preference or Preference())
    pref = chat.preference or route.profile.preference()
    rec.policy, rec.preference = policy.name, dataclasses.asdict(pref)
    if plan is not None and route.profile.policy is not None:
        rec.preference = route.profile.policy.model_dump()
        if chat.preference is not None:
            rec.preference["lam"] = chat.preference.lam
        rebalance(plan, gw.backends)
    return policy

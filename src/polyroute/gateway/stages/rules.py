"""Rules: the config's decision rules in order (the first that holds acts), then named routes.

A rule reading only cheap signals is evaluated before anything is embedded; at the first rule
that reads the router's embedding or estimates (``domain``, ``router.*``) — or for a named
route — the decider analyses the routing text once, and the decide stage then ranks on that
same analysis. So every action still happens before the decision:

* ``block`` ends the request here: 403 with the rule's message (record: ``rule <name>: ...``);
* ``profile`` routes the request with another profile;
* ``pin`` serves one backend, without routing;
* ``models`` restricts the candidates (within the profile's own restriction); the router then
  ranks only those. A backend named directly that is outside the list is refused (403).

Named routes apply to a routed request unless a rule pinned or restricted it: the nearest
route above its threshold restricts the candidates to its models. The rule that fired is sent as
``x-polyroute-rule``, the route as ``x-polyroute-route``; both are in the record.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from starlette.responses import Response

from polyroute.gateway.errors import APIError, error_response
from polyroute.policies import BalancedPolicy, TradeoffPolicy
from polyroute.signals import Rule
from polyroute.store import ERROR

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext

RULE_HEADER = "x-polyroute-rule"
ROUTE_HEADER = "x-polyroute-route"


async def run(ctx: RequestContext) -> Response | None:
    gw, values = ctx.gw, ctx.signals
    if values is None:
        return None
    fired: Rule | None = None
    for rule in gw.rules:
        if rule.late and not values.analysed:
            await _analyse(ctx)
        if rule.holds(values):
            fired = rule
            break
    if fired is not None:
        response = _act(ctx, fired)
        if response is not None:
            return response
    route = ctx.route
    assert route is not None
    if gw.named_routes is not None and route.profile is not None and \
            (fired is None or fired.action.kind == "profile"):
        if not values.analysed:
            await _analyse(ctx)
        assert values.inputs.embedding is not None
        named = gw.named_routes.nearest(values.inputs.embedding)
        if named is not None:
            restrict_candidates(ctx, named.models, f"route {named.name}")
            ctx.rec.named_route = named.name
            ctx.rec.extra_headers[ROUTE_HEADER] = named.name
    return None


async def _analyse(ctx: RequestContext) -> None:
    """The router's embedding and estimates of the routing text, made once."""
    assert ctx.chat is not None and ctx.signals is not None
    analysis = ctx.analysis = await ctx.gw.decider.analyse(ctx.chat.text)
    ctx.signals.inputs.embedding = analysis.embedding
    ctx.signals.inputs.estimates = analysis.estimates


def _act(ctx: RequestContext, rule: Rule) -> Response | None:
    gw, rec, action = ctx.gw, ctx.rec, rule.action
    rec.rule = rule.name
    rec.extra_headers[RULE_HEADER] = rule.name
    if action.block is not None:
        rec.ended_by = f"rule {rule.name}: {action.block}"
        rec.finish(ERROR, 403, kind="rule_blocked")
        return error_response(APIError(403, action.block, code="blocked_by_rule"),
                              rec.headers())
    if action.profile is not None:
        route = ctx.route = gw.resolve(action.profile)
        rec.route = rec.profile = route.name
    elif action.pin is not None:
        ctx.route = gw.routes[action.pin]
    else:
        assert action.models is not None
        restrict_candidates(ctx, action.models, f"rule {rule.name}")
    return None


def restrict_candidates(ctx: RequestContext, models: tuple[str, ...], why: str) -> None:
    """Let only ``models`` (among those the request's profile allows) be candidates."""
    route = ctx.route
    assert route is not None
    if route.profile is None:  # a backend named directly is the only candidate
        if route.backend not in models:
            raise APIError(403, f"{why} allows only {', '.join(models)}; {route.backend!r} is "
                                f"not one of them", code="model_not_allowed", param="model")
        return
    allowed = tuple(m for m in (route.allowed or models) if m in models)
    if not any(m in allowed for m in ctx.gw.decider.models):
        raise APIError(503, f"{why} leaves no model the router can route for profile "
                            f"{route.name!r} (it allows {', '.join(models)})",
                       code="no_routable_backend")
    plan = route.plan
    if plan is not None and plan.balancer is not None:
        # A balancer is built for its profile's models exactly; among fewer, plain trade-off.
        assert isinstance(plan.policy, BalancedPolicy)
        plan = dataclasses.replace(plan, policy=TradeoffPolicy(plan.policy.lam), balancer=None)
    ctx.route = dataclasses.replace(
        route, profile=route.profile.model_copy(update={"models": allowed}), plan=plan,
        policy=plan.policy if plan is not None else route.policy)

"""The small read-only endpoints: ``/v1/models``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from polyroute.gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.metrics import CONTENT_TYPE
from polyroute.gateway.service import Gateway


async def list_models(request: Request) -> Response:
    """Route profiles first, then backends, in the OpenAI list shape."""
    gw: Gateway = request.app.state.gateway
    try:
        gw.keys.authenticate(request.headers.get("authorization"))
    except APIError as exc:
        return error_response(exc)
    data = []
    for name, route in gw.routes.items():
        entry = {"id": name, "object": "model", "created": 0, "owned_by": "polyroute"}
        if route.profile is not None:
            entry["polyroute"] = {"kind": "profile", "policy": route.policy.name,
                                  "description": route.profile.description}
        else:
            backend = gw.backends[name].config
            entry["polyroute"] = {"kind": "backend", "upstream_model": backend.upstream_model,
                                  "routable": name in gw.decider.models}
        data.append(entry)
    return JSONResponse({"object": "list", "data": data})


#: A breaker's state in the words ``/healthz`` shows an operator.
_HEALTH_WORDS = {CLOSED: "healthy", OPEN: "cooling down", HALF_OPEN: "probing"}


def backend_health(breaker: CircuitBreaker) -> str:
    """``healthy`` (traffic flows), ``cooling down (N s left)`` (skipped after failures) or
    ``probing`` (the cooldown is over: the next request is a probe)."""
    left = breaker.retry_after()
    if breaker.state == OPEN and left <= 0:
        return _HEALTH_WORDS[HALF_OPEN]  # the next request turns it half-open and probes
    if breaker.state == OPEN:
        return f"{_HEALTH_WORDS[OPEN]} ({math.ceil(left)} s left)"
    return _HEALTH_WORDS[breaker.state]


async def healthz(request: Request) -> Response:
    """``ok`` when every backend is healthy, ``degraded`` when some cool down or probe, ``down``
    (503) when all do, ``draining`` (503) while shutting down, ``store_full`` (503) while the
    store's database is unreachable and its write queue is full — so a load balancer stops
    sending here in the last three cases; ``degraded`` too while the database is unreachable
    but writes still queue. ``backends`` keeps the raw breaker states for scripts; ``health``
    says the same in words; ``store`` says whether the database is reached and how many writes
    wait."""
    gw: Gateway = request.app.state.gateway
    health = {n: backend_health(b.breaker) for n, b in gw.backends.items()}
    cooling = sum(1 for h in health.values() if h.startswith(_HEALTH_WORDS[OPEN]))
    store = gw.store
    if gw.draining:
        status = "draining"
    elif store.saturated:
        status = "store_full"
    else:
        healthy = sum(1 for h in health.values() if h == _HEALTH_WORDS[CLOSED])
        status = "ok" if healthy == len(health) else "down" if cooling == len(health) \
            else "degraded"
        if status == "ok" and not store.reachable:
            status = "degraded"
    body = {"status": status,
            "backends": {n: b.breaker.state for n, b in gw.backends.items()},
            "health": health,
            "store": {"reachable": store.reachable, "queued_writes": store.pending_writes}}
    return JSONResponse(body, status_code=503 if status in ("down", "draining", "store_full")
                        else 200)


async def metrics(request: Request) -> Response:
    """Prometheus text; needs a valid client key if ``server.metrics_auth`` and keys exist (even
    when ``require_auth`` lets anonymous chat in: metrics are operator data)."""
    gw: Gateway = request.app.state.gateway
    if gw.config.server.metrics_auth and gw.config.keys:
        try:
            gw.keys.authenticate(request.headers.get("authorization"), required=True)
        except APIError as exc:
            return error_response(exc)
    body = gw.metrics.render(((n, b.breaker) for n, b in gw.backends.items()),
                             loads=((n, b.load) for n, b in gw.backends.items()),
                             balancers=((n, r.plan.balancer) for n, r in gw.routes.items()
                                        if r.plan is not None and r.plan.balancer is not None),
                             store=gw.store)
    return Response(body, media_type=CONTENT_TYPE)

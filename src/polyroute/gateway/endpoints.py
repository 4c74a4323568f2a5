"""The small read-only endpoints: ``/v1/models``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


async def healthz(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return JSONResponse({"status": "draining" if gw.draining else "ok",
                         "backends": {n: b.breaker.state for n, b in gw.backends.items()}})


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
                                        if r.plan is not None and r.plan.balancer is not None))
    return Response(body, media_type=CONTENT_TYPE)

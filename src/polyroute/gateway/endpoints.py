"""The small endpoints outside the pipeline: ``/v1/models``, ``/healthz``, ``/metrics``,
``/v1/messages/count_tokens``, ``GET /v1/responses/{id}``."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from polyroute.gateway.apis.messages import MESSAGES, anthropic_authorization, count_tokens
from polyroute.gateway.apis.responses import load_response, not_found
from polyroute.gateway.body import ClientGone, parse_object, read_body
from polyroute.gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.metrics import CONTENT_TYPE
from polyroute.gateway.service import Gateway


async def list_models(request: Request) -> Response:
    """Route profiles first, then backends, in the OpenAI list shape — or in Anthropic's when
    the client is an Anthropic one (it sends ``anthropic-version``, or only ``x-api-key``)."""
    gw: Gateway = request.app.state.gateway
    anthropic = "anthropic-version" in request.headers or (
        "x-api-key" in request.headers and "authorization" not in request.headers)
    try:
        gw.keys.authenticate(anthropic_authorization(request.headers))
    except APIError as exc:
        return MESSAGES.error_response(exc) if anthropic else error_response(exc)
    if anthropic:
        return JSONResponse(_anthropic_models(gw))
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


def _anthropic_models(gw: Gateway) -> dict:
    """Anthropic's models list: ``type: model``, ``display_name``, an RFC 3339 ``created_at``
    (the epoch: profiles have no release date), one page."""
    data = [{"type": "model", "id": name, "created_at": "1970-01-01T00:00:00Z",
             "display_name": (route.profile.description if route.profile is not None
                              and route.profile.description else name)}
            for name, route in gw.routes.items()]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


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


async def count_message_tokens(request: Request) -> Response:
    """``POST /v1/messages/count_tokens`` (Claude Code asks before each request): the Messages
    body's prompt tokens, estimated as the spend reservation counts them (see
    :func:`~polyroute.gateway.apis.messages.estimate_tokens`). Nothing is forwarded or recorded."""
    gw: Gateway = request.app.state.gateway
    try:
        gw.keys.authenticate(anthropic_authorization(request.headers))
        server = gw.config.server
        raw = await read_body(request, server.max_body_bytes, server.body_timeout)
        return JSONResponse(count_tokens(parse_object(raw)))
    except APIError as exc:
        return MESSAGES.error_response(exc)
    except ClientGone:
        return Response(status_code=499)


async def get_response(request: Request) -> Response:
    """``GET /v1/responses/{id}``: a kept Responses answer, to the key that created it."""
    gw: Gateway = request.app.state.gateway
    try:
        key = gw.keys.authenticate(request.headers.get("authorization"))
        response_id = request.path_params["response_id"]
        stored = await load_response(gw.store, response_id, key.id if key else None)
        if stored is None:
            raise not_found(response_id, None)
    except APIError as exc:
        return error_response(exc)
    return Response(stored.response, media_type="application/json")

"""Operator endpoints, for client keys marked ``admin: true`` only.

``POST /v1/admin/reload-router`` loads ``router.path`` again (e.g. after ``polyroute onboard``
wrote a new router there) and switches to it without a restart; SIGHUP does the same. The answer
names both routers' identities, as the log line does.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from polyroute.errors import PolyrouteError
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.service import Gateway


def require_admin(gw: Gateway, request: Request) -> None:
    """401 without a valid key, 403 for a key that is not an admin key."""
    key = gw.keys.authenticate(request.headers.get("authorization"), required=True)
    if key is None or not key.admin:
        raise APIError(403, "this endpoint needs a client key with admin: true",
                       code="admin_only", type="invalid_request_error")


async def reload_router(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        require_admin(gw, request)
        try:
            switch = await gw.reload_router()
        except PolyrouteError as exc:
            raise APIError(409, f"the router was not switched: {exc}",
                           code="router_not_reloaded") from None
    except APIError as exc:
        return error_response(exc)
    return JSONResponse({"object": "router.switch", **switch})

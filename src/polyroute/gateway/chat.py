"""``POST /v1/chat/completions``: authenticate, then run the request pipeline.

The pipeline's stages (``gateway/stages``) and serving strategies (``gateway/serving``) do the
work on one :class:`~polyroute.gateway.context.RequestContext`; this endpoint authenticates (a
request refused for its key is counted, never stored), opens the request's record, and maps what
can go wrong to one answer and exactly one finished record:

=========================  =======================================================
``APIError``               its status and OpenAI-shaped body (recorded ``error``)
``ClientGone``             the client left before its answer (``client_closed``)
any other exception        a bug: 500, logged with its traceback (recorded ``error``)
cancelled (shutdown)       ``interrupted``
=========================  =======================================================
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from polyroute.gateway.body import ClientGone
from polyroute.gateway.context import RequestContext
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.recorder import Recorder
from polyroute.gateway.service import Gateway
from polyroute.gateway.stages import run_pipeline
from polyroute.gateway.streaming import RelayResponse
from polyroute.store import CLIENT_CLOSED, ERROR, INTERRUPTED

logger = logging.getLogger(__name__)


async def chat_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        key = gw.keys.authenticate(request.headers.get("authorization"))
    except APIError as exc:
        # Counted, never stored: a flood of wrong keys must not fill the store (or its disk).
        gw.metrics.unauthenticated()
        return error_response(exc)
    rec = Recorder(gw)
    rec.key_id = key.id if key is not None else None
    gw.enter()
    handed_over = False
    try:
        response = await run_pipeline(RequestContext(gw, request, key, rec), gw.stages)
        # A relayed stream is recorded (and leaves) when it ends, in its on_done.
        handed_over = isinstance(response, RelayResponse)
        return response
    except APIError as exc:
        rec.finish(ERROR, exc.status, error=exc.message)
        return error_response(exc, rec.headers())
    except ClientGone as exc:
        rec.finish(CLIENT_CLOSED, 499, error=str(exc))
        return Response(status_code=499, headers=rec.headers())  # nobody is left to read it
    except Exception:
        logger.exception("request %s failed inside the gateway", rec.id)
        exc = APIError(500, f"internal gateway error (request {rec.id}); see the gateway log")
        rec.finish(ERROR, 500, error="internal gateway error")
        return error_response(exc, rec.headers())
    finally:
        if not handed_over:
            # Only reached without a record when the task was cancelled (server shutdown).
            rec.finish(INTERRUPTED, 499, error="the request was cancelled before it finished")
            gw.leave()

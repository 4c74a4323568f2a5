"""The one endpoint function every client API is served by: authenticate, run the pipeline,
shape its answer for the client.

The endpoint authenticates (a request refused for its key is counted, never stored), opens the
request's record, and maps what can go wrong to one answer and exactly one finished record:

=========================  =======================================================
``APIError``               its status and the client API's error body (``error``)
``ClientGone``             the client left before its answer (``client_closed``)
any other exception        a bug: 500, logged with its traceback (recorded ``error``)
cancelled (shutdown)       ``interrupted``
=========================  =======================================================

The pipeline's answer is internal (a chat completion, a chat-chunk stream, an OpenAI-shaped
error); :func:`shape_answer` hands it to the request's :class:`~.base.Exchange` to say it in the
client's shape: a relayed stream gets a shaper that rewrites its events as they pass.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from polyroute.gateway.apis.base import ClientAPI, Exchange, internal_error
from polyroute.gateway.body import ClientGone
from polyroute.gateway.context import RequestContext
from polyroute.gateway.errors import APIError
from polyroute.gateway.recorder import Recorder
from polyroute.gateway.service import Gateway
from polyroute.gateway.stages import run_pipeline
from polyroute.gateway.streaming import RelayResponse
from polyroute.store import CLIENT_CLOSED, ERROR, INTERRUPTED

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
#: Headers of the internal answer not carried to a re-shaped one (its body changed).
_BODY_HEADERS = ("content-length", "content-type")


def endpoint_for(api: ClientAPI) -> Endpoint:
    """The Starlette endpoint serving ``api`` through the gateway's pipeline."""

    async def endpoint(request: Request) -> Response:
        gw: Gateway = request.app.state.gateway
        try:
            key = gw.keys.authenticate(api.authorization(request.headers))
        except APIError as exc:
            # Counted, never stored: a flood of wrong keys must not fill the store (or its disk).
            gw.metrics.unauthenticated()
            return api.error_response(exc)
        rec = Recorder(gw)
        rec.key_id = key.id if key is not None else None
        gw.enter()
        handed_over = False
        try:
            ctx = RequestContext(gw, request, key, rec, api=api)
            response = await run_pipeline(ctx, gw.stages)
            response = shape_answer(api, ctx.exchange, response)
            # A relayed stream is recorded (and leaves) when it ends, in its on_done.
            handed_over = isinstance(response, RelayResponse)
            return response
        except APIError as exc:
            rec.finish(ERROR, exc.status, error=exc.message)
            return api.error_response(exc, rec.headers())
        except ClientGone as exc:
            rec.finish(CLIENT_CLOSED, 499, error=str(exc))
            return Response(status_code=499, headers=rec.headers())  # nobody is left to read it
        except Exception:
            logger.exception("request %s failed inside the gateway", rec.id)
            exc = APIError(500, f"internal gateway error (request {rec.id}); see the gateway log")
            rec.finish(ERROR, 500, error="internal gateway error")
            return api.error_response(exc, rec.headers())
        finally:
            if not handed_over:
                # Only reached without a record when the task was cancelled (server shutdown).
                rec.finish(INTERRUPTED, 499, error="the request was cancelled before it finished")
                gw.leave()

    endpoint.__name__ = f"{api.name}_endpoint"
    return endpoint


def shape_answer(api: ClientAPI, exchange: Exchange | None, response: Response) -> Response:
    """The pipeline's internal ``response`` in the client's shape (unchanged when the client
    speaks the internal shape, ``exchange`` None)."""
    if exchange is None:
        return response
    if isinstance(response, RelayResponse):
        response.shaper = exchange.stream()
        return response
    headers = {k: v for k, v in response.headers.items() if k not in _BODY_HEADERS}
    if response.status_code != 200:
        return api.error_response(internal_error(response.status_code, response.body), headers)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        # A buffered stream (a multi-call answer, a cache hit, a guard's refusal).
        shaper = exchange.stream()
        body = shaper.feed(bytes(response.body)) + shaper.finish()
        return Response(body, media_type="text/event-stream", headers=headers)
    body = exchange.answer(json.loads(response.body))
    return Response(body, media_type="application/json", headers=headers)

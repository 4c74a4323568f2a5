"""What every serving strategy provides, and the pieces they share."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from starlette.responses import Response

from polyroute.gateway.cascade import MultiCallResult
from polyroute.gateway.errors import APIError
from polyroute.gateway.forward import AllFailed, Answer
from polyroute.gateway.streaming import completion_to_sse
from polyroute.store import ERROR, OK

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext
    from polyroute.gateway.recorder import Recorder

#: ``bound(backend, extra_prompt_tokens)``: one call's worst-case dollars on that backend.
Bound = Callable[[str, int], float]


class ServingStrategy(Protocol):
    def answering(self, ctx: RequestContext) -> set[str]:
        """The backends that may produce an answer (their ceilings bound its length)."""
        ...

    def reservation(self, ctx: RequestContext, one_call: float, bound: Bound,
                    tokens_out: int) -> float:
        """Worst-case dollars of the request, given one plain call's bound ``one_call``."""
        ...

    async def serve(self, ctx: RequestContext) -> Response:
        """Answer the decided request (its record is finished here or by the response)."""
        ...


def api_error(exc: AllFailed) -> APIError:
    """No candidate answered: the client's 502 / 503 / 504 (400: none could express it)."""
    headers = {"retry-after": str(math.ceil(exc.retry_after))} if exc.retry_after else None
    code = {503: "backend_unavailable", 504: "backend_timeout",
            400: "unsupported_by_backends"}.get(exc.status, "backend_error")
    return APIError(exc.status, exc.message, code=code, headers=headers)


def answered(rec: Recorder, result: Answer | MultiCallResult, *, stream: bool = False,
             include_usage: bool = False) -> Response:
    """Record and return a complete answer (or a relayed client error); for a multi-call
    answer, every other paid call is charged too.

    With ``stream``, a successful answer is sent as a buffered SSE stream (``include_usage``:
    the client's ``stream_options.include_usage``); a relayed client error stays a JSON error.
    """
    if isinstance(result, MultiCallResult):
        result = result.answer
    rec.returned = result  # the answer the client gets (a later stage may keep it: the cache)
    rec.chosen = result.backend.name
    ok = result.status == 200
    content, media_type = result.content, result.content_type
    headers = rec.headers()
    if ok and stream:  # before the record is written: a failure here is a recorded 500
        content = completion_to_sse(json.loads(result.content), include_usage=include_usage)
        media_type = "text/event-stream"
        headers["cache-control"] = "no-cache"
    rec.answered = ok
    rec.finish(OK if ok else ERROR, result.status, usage=result.usage,
               error=None if ok else f"backend {rec.chosen} refused the request "
                                     f"(HTTP {result.status})",
               kind=None if ok else "backend_refused")
    return Response(content, status_code=result.status, media_type=media_type, headers=headers)

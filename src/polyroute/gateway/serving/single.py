"""One model answers: the first candidate that does, the rest as fallbacks before the first byte.

A complete answer is recorded and returned; a stream is relayed as it arrives
(:class:`~polyroute.gateway.streaming.RelayResponse`), and recorded when it ends — ``ok`` only
if it completed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from starlette.responses import Response

from polyroute.gateway.disconnect import unless_client_leaves
from polyroute.gateway.forward import AllFailed, Answer, forward
from polyroute.gateway.serving.base import Bound, answered, api_error
from polyroute.gateway.streaming import RelayResponse, StreamResult
from polyroute.store import CLIENT_CLOSED, ERROR, INTERRUPTED, OK

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext


class SingleStrategy:
    def answering(self, ctx: RequestContext) -> set[str]:
        return {c.model for c in ctx.rec.candidates}

    def reservation(self, ctx: RequestContext, one_call: float, bound: Bound,
                    tokens_out: int) -> float:
        return one_call

    async def serve(self, ctx: RequestContext) -> Response:
        gw, rec, chat = ctx.gw, ctx.rec, ctx.chat
        assert chat is not None
        try:
            result = await unless_client_leaves(ctx.request, forward(
                [gw.backends[c.model] for c in rec.candidates], chat.body, stream=chat.stream,
                client_wants_usage=chat.wants_usage, request_id=rec.id, attempts=rec.attempts,
                metrics=gw.metrics), gw.cutting)
        except AllFailed as exc:
            raise api_error(exc) from None
        rec.chosen = result.backend.name

        if isinstance(result, Answer):
            return answered(rec, result)

        rec.answered = True
        rec.progress()  # a stream may run for minutes: what it costs is on record from now

        def on_done(ending: StreamResult) -> None:
            try:
                # A disconnect seen after the last byte (the client closing) is not an
                # abandonment.
                if ending.completed:
                    status = OK
                elif ending.cut:
                    status = INTERRUPTED
                elif ending.error is not None or not ending.client_closed:
                    status = ERROR
                else:
                    status = CLIENT_CLOSED
                if ending.error is not None:  # the committed try failed after all: say so
                    rec.attempts[-1] = dataclasses.replace(
                        rec.attempts[-1], outcome="stream_error", error=ending.error)
                rec.finish(status, 200, error=ending.error, usage=ending.usage,
                           ttfb_ms=ending.ttfb_ms, ended=ending.ended,
                           kind="backend_stream_error" if status == ERROR else None)
            finally:
                gw.leave()

        return RelayResponse(result, rec.headers(), rec.t0, on_done, cut=gw.cutting)

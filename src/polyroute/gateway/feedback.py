"""``POST /v1/feedback``: a score in [0, 1] for an earlier request, kept for retraining.

The score is stored against the request (same client key only: a key cannot rate, or probe for,
another key's requests). If the loaded router ``learns_online``, the score is also fed to its
``learn_one`` at once, on the decision thread. Every answer, a failure inside the gateway
included, is an OpenAI-shaped JSON body.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from polyroute.errors import StoreError
from polyroute.gateway.body import parse_object, read_body
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.service import Gateway
from polyroute.gateway.validate import number
from polyroute.store import FeedbackRecord

logger = logging.getLogger(__name__)

MAX_FEEDBACK_BYTES = 64 * 1024
MAX_COMMENT_CHARS = 4000
_SCORE = number(0, 1)


def _parse(obj: dict) -> tuple[str, float, str | None]:
    request_id = obj.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise APIError(400, "'request_id' must be the x-polyroute-request-id of an earlier "
                            "request", param="request_id")
    score = obj.get("score")
    try:
        _SCORE(score, "score")
    except APIError as exc:
        raise APIError(400, f"'score' must be a number in [0, 1] ({exc.message})",
                       param="score", code=exc.code) from None
    comment = obj.get("comment")
    if comment is not None and (not isinstance(comment, str) or
                                len(comment) > MAX_COMMENT_CHARS):
        raise APIError(400, f"'comment' must be a string of at most {MAX_COMMENT_CHARS} "
                            f"characters", param="comment")
    unknown = sorted(set(obj) - {"request_id", "score", "comment"})
    if unknown:
        raise APIError(400, f"unknown field(s) {', '.join(unknown)}", param=unknown[0])
    return request_id, float(score), comment


async def feedback(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        key = gw.keys.authenticate(request.headers.get("authorization"))
        request_id, score, comment = _parse(parse_object(
            await read_body(request, MAX_FEEDBACK_BYTES, gw.config.server.body_timeout)))
        record = FeedbackRecord(request_id, score, time.time(),
                                key.id if key is not None else None, comment)
        try:
            target = await asyncio.wrap_future(gw.store.add_feedback(record))
        except StoreError as exc:
            raise APIError(404, str(exc), code="request_not_found", param="request_id") from None
        learned = False
        if gw.decider.learns_online and target.prompt and target.chosen:
            learned = await gw.decider.learn(target.prompt, target.chosen, score)
            if learned:  # the other replicas learn it too (shared state only)
                gw.shared.feedback.published(target.prompt, target.chosen, score)
        gw.metrics.feedback.inc()
    except APIError as exc:
        return error_response(exc)
    except Exception:
        logger.exception("feedback failed inside the gateway")
        return error_response(APIError(500, "internal gateway error; see the gateway log"))
    return JSONResponse({"object": "feedback", "id": target.feedback_id,
                         "request_id": request_id, "score": score, "learned": learned})

"""``POST /v1/chat/completions``: authenticate, check, route, forward, record.

Every request — answered, refused, failed, cancelled or abandoned by its client — ends in exactly
one :class:`~polyroute.store.RequestRecord` written in one transaction; a request that reached
routing also has its start row queued first, so a crash leaves it ``in_progress`` (marked
``interrupted`` at the next start) rather than unrecorded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, ModelInfo, input_tokens, rule_cost
from polyroute.gateway.aggregate import run_topk
from polyroute.gateway.body import parse_chat, parse_object, read_body
from polyroute.gateway.cascade import MultiCallResult, run_cascade
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.forward import AllFailed, Answer, forward
from polyroute.gateway.profiles import CASCADE, TOPK, ProfilePlan, rebalance, with_preference
from polyroute.gateway.service import Gateway
from polyroute.gateway.spend import Reservation
from polyroute.gateway.streaming import RelayResponse, StreamResult, completion_to_sse
from polyroute.policies import CascadeDecision, Preference, SetDecision, policy_for
from polyroute.store import (
    CLIENT_CLOSED,
    ERROR,
    INTERRUPTED,
    OK,
    Attempt,
    Candidate,
    RequestRecord,
    RequestStart,
)

logger = logging.getLogger(__name__)


class _Recorder:
    """Collects what is learnt about a request and writes its record exactly once."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.id = uuid.uuid4().hex
        self.ts = time.time()
        self.t0 = time.perf_counter()
        self.key_id: str | None = None
        self.requested_model: str | None = None
        self.route: str | None = None
        self.profile: str | None = None
        self.stream = False
        self.policy: str | None = None
        self.preference: dict[str, Any] | None = None
        self.text: str | None = None
        self.candidates: tuple[Candidate, ...] = ()
        self.attempts: list[Attempt] = []
        self.chosen: str | None = None
        #: Complete answers of a multi-call request (cascade steps, set members, the merge), as
        #: they arrive; all but ``returned`` are charged here, ``returned`` as the chosen one.
        self.paid: list[Answer] = []
        self.returned: Answer | None = None
        #: Extra response headers describing a multi-call answer.
        self.extra_headers: dict[str, str] = {}
        self.decision_ms: float | None = None
        #: A backend produced an answer (charged), as opposed to relaying a refusal.
        self.answered = False
        #: The key's spend reservation while the request is in flight (released by ``finish``).
        self.reservation: Reservation | None = None
        self.done = False

    def headers(self) -> dict[str, str]:
        h = {"x-polyroute-request-id": self.id}
        if self.chosen is not None:
            h["x-polyroute-model"] = self.chosen
            h["x-polyroute-fallbacks"] = str(sum(1 for a in self.attempts
                                                 if a.outcome not in ("ok", "passthrough")))
        if self.profile is not None:
            h["x-polyroute-profile"] = self.profile
        h.update(self.extra_headers)
        return h

    def start(self) -> None:
        self.gw.store.start_request(RequestStart(self.id, self.ts, self.key_id,
                                                 self.requested_model, self.profile, self.stream))

    def finish(self, status: str, http_status: int, *, error: str | None = None,
               usage: dict[str, Any] | None = None, ttfb_ms: float | None = None,
               ended: float | None = None, kind: str | None = None) -> None:
        """Write the record (once) and count it; ``kind`` labels the error metric."""
        if self.done:
            return
        self.done = True
        gw = self.gw
        # The one place a request's spend reservation is given back, before anything here can
        # fail; its actual cost is added below, with no await in between.
        gw.spend.release(self.reservation)
        latency_s = (ended if ended is not None else time.perf_counter()) - self.t0
        charges = self._charges(usage)
        prompt_tokens, completion_tokens = _sum_tokens([c[1] for c in charges]), \
            _sum_tokens([c[2] for c in charges])
        cost = sum(c[3] for c in charges)
        sources = {c[4] for c in charges if c[4] is not None}
        source = None if not sources else sources.pop() if len(sources) == 1 else "mixed"
        record = RequestRecord(
            id=self.id, ts=self.ts, status=status, http_status=http_status, key_id=self.key_id,
            requested_model=self.requested_model, profile=self.profile, stream=self.stream,
            policy=self.policy, preference=self.preference,
            prompt=self.text if gw.config.store.record_prompts else None,
            candidates=self.candidates, attempts=tuple(self.attempts), chosen=self.chosen,
            error=error, latency_ms=latency_s * 1000, decision_ms=self.decision_ms,
            ttfb_ms=ttfb_ms, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cost=cost, cost_source=source, finished_ts=time.time())
        try:
            gw.store.finish_request(record)
        finally:
            gw.metrics.finished(self.route or "invalid", http_status, latency_s, self.stream)
            if status != OK:
                gw.metrics.errors.labels(kind or _error_kind(status, http_status)).inc()
            for name, pt, ct, c, _ in charges:
                gw.metrics.charged(name, c, pt, ct)
            if charges or self.chosen is not None:
                gw.spend.add(self.key_id, cost)

    def _charges(self, usage: dict[str, Any] | None
                 ) -> list[tuple[str, int | None, int | None, float, str | None]]:
        """(backend, prompt tokens, completion tokens, cost, source) of every paid call."""
        out = [(a.backend.name, *self._cost(a.backend.name, a.usage)) for a in self.paid
               if a is not self.returned]
        if self.chosen is not None and self.answered:
            out.append((self.chosen, *self._cost(self.chosen, usage)))
        return out

    def _cost(self, name: str, usage: dict[str, Any] | None
              ) -> tuple[int | None, int | None, float, str | None]:
        """Backend-reported tokens × the backend's prices; else the predicted cost."""
        cfg = self.gw.backends[name].config
        if usage:
            pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(pt, int) and isinstance(ct, int):
                cost = (pt * cfg.input_price_per_mtok + ct * cfg.output_price_per_mtok) / 1e6
                return pt, ct, cost, "usage"
        for c in self.candidates:
            if c.model == name and c.estimated_cost is not None:
                return None, None, float(c.estimated_cost), "estimate"
        info = ModelInfo(cfg.name, cfg.input_price_per_mtok, cfg.output_price_per_mtok)
        return None, None, rule_cost(self.text or "", info), "estimate"


def _sum_tokens(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _error_kind(status: str, http_status: int) -> str:
    if status == CLIENT_CLOSED:
        return "client_closed"
    if status == INTERRUPTED:
        return "interrupted"
    return {400: "bad_request", 401: "auth", 404: "not_found", 413: "too_large",
            429: "spend_limit", 502: "backend_failed", 503: "backend_unavailable",
            504: "backend_timeout"}.get(http_status, f"http_{http_status}")


async def chat_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    rec = _Recorder(gw)
    gw.metrics.in_flight.inc()
    handed_over = False
    try:
        response = await _handle(gw, request, rec)
        handed_over = isinstance(response, RelayResponse)
        return response
    except APIError as exc:
        rec.finish(ERROR, exc.status, error=exc.message)
        return error_response(exc, rec.headers())
    except Exception:
        logger.exception("request %s failed inside the gateway", rec.id)
        exc = APIError(500, f"internal gateway error (request {rec.id}); see the gateway log")
        rec.finish(ERROR, 500, error="internal gateway error")
        return error_response(exc, rec.headers())
    finally:
        if not handed_over:
            gw.metrics.in_flight.dec()
            # Only reached without a record when the task was cancelled (server shutdown).
            rec.finish(INTERRUPTED, 499, error="the request was cancelled before it finished")


async def _handle(gw: Gateway, request: Request, rec: _Recorder) -> Response:
    key = gw.keys.authenticate(request.headers.get("authorization"))
    rec.key_id = key.id if key is not None else None
    raw = await read_body(request, gw.config.server.max_body_bytes)
    chat = parse_chat(parse_object(raw), request.headers)
    rec.requested_model, rec.stream, rec.text = chat.model, chat.stream, chat.text
    route = gw.resolve(chat.model)
    rec.route = route.name
    rec.profile = route.name if route.profile is not None else None
    gw.spend.check(key)  # the cheap check: spent + reserved; the reservation follows routing
    rec.start()

    plan = None
    if route.profile is not None:
        assert route.policy is not None and route.plan is not None
        # A per-request λ keeps the profile's kind; a budget or floor routes plainly.
        plan = with_preference(route.profile, route.plan, chat.preference)
        policy = plan.policy if plan is not None else policy_for(chat.preference or Preference())
        pref = chat.preference or route.profile.preference()
        rec.policy, rec.preference = policy.name, dataclasses.asdict(pref)
        if plan is not None and route.profile.policy is not None:
            rec.preference = route.profile.policy.model_dump()
            if chat.preference is not None:
                rec.preference["lam"] = chat.preference.lam
            rebalance(plan, gw.backends)
        decision = await gw.decider.decide(chat.text, policy, route.allowed)
        rec.candidates, rec.decision_ms = decision.candidates, decision.decision_ms
        gw.metrics.decision_latency.observe(decision.decision_ms / 1000)
        gw.metrics.decisions.labels(route.name, decision.candidates[0].model).inc()
    else:
        assert route.backend is not None
        rec.candidates = (Candidate(route.backend),)
    if gw.spend.limits(key):  # most keys have no limit: no estimate on their path
        multi = decision.plan if plan is not None and plan.mode in (CASCADE, TOPK) else None
        rec.reservation = gw.spend.reserve(key, _reservation(gw, chat.text, chat.body,
                                                             rec.candidates, multi, plan))

    if plan is not None and plan.mode in (CASCADE, TOPK):
        # Streamed or not, every call is made non-streamed: a streamed request gets the final
        # answer replayed as SSE once the cascade or merge is done (see completion_to_sse).
        body = chat.body if not chat.stream else {
            k: v for k, v in chat.body.items() if k not in ("stream", "stream_options")}
        result = await _multi_call(gw, rec, chat.text, body, plan.mode, decision.plan, plan)
        return _answered(rec, result, stream=chat.stream, include_usage=chat.wants_usage)

    try:
        result = await forward([gw.backends[c.model] for c in rec.candidates], chat.body,
                               stream=chat.stream, client_wants_usage=chat.wants_usage,
                               request_id=rec.id, attempts=rec.attempts, metrics=gw.metrics)
    except AllFailed as exc:
        raise _api_error(exc) from None
    rec.chosen = result.backend.name

    if isinstance(result, Answer):
        return _answered(rec, result)

    rec.answered = True

    def on_done(ending: StreamResult) -> None:
        try:
            # A disconnect seen after the last byte (the client closing) is not an abandonment.
            if ending.completed:
                status = OK
            elif ending.error is not None or not ending.client_closed:
                status = ERROR
            else:
                status = CLIENT_CLOSED
            if ending.error is not None:  # the committed try failed after all: say so
                rec.attempts[-1] = dataclasses.replace(rec.attempts[-1], outcome="stream_error",
                                                       error=ending.error)
            rec.finish(status, 200, error=ending.error, usage=ending.usage,
                       ttfb_ms=ending.ttfb_ms, ended=ending.ended,
                       kind="backend_stream_error" if status == ERROR else None)
        finally:
            gw.metrics.in_flight.dec()

    return RelayResponse(result, rec.headers(), rec.t0, on_done)


def _output_tokens(body: dict[str, Any]) -> int:
    """Completion tokens a call may produce: ``max_completion_tokens`` or ``max_tokens`` when
    given, else the cost model's assumed answer length; times ``n`` choices."""
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    out = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 \
        else DEFAULT_OUTPUT_TOKENS
    n = body.get("n")
    return out * n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else out


def _reservation(gw: Gateway, text: str, body: dict[str, Any],
                 candidates: tuple[Candidate, ...],
                 multi: CascadeDecision | SetDecision | None, plan: ProfilePlan | None) -> float:
    """Upper estimate of a request's cost, reserved against its key's spend limit.

    One call's bound is the most expensive candidate's: per candidate the larger of the router's
    predicted cost and the backend's list prices × (prompt tokens, ``_output_tokens``) — the
    most expensive because a fallback may answer instead of the first choice, and the output
    from ``max_tokens`` because only the client's own cap bounds an answer's length (else the
    cost model's assumed length). A cascade may call every step of its chain, a top-k set every
    member plus the merge (whose prompt carries the members' answers), so those reserve that
    many calls. A handful of multiplications over at most the backends: O(1) per request.
    """
    tokens_in, tokens_out = input_tokens(text), _output_tokens(body)

    def bound(name: str, extra_in: int = 0) -> float:
        cfg = gw.backends[name].config
        return ((tokens_in + extra_in) * cfg.input_price_per_mtok
                + tokens_out * cfg.output_price_per_mtok) / 1e6

    one = max((max(bound(c.model), c.estimated_cost or 0.0) for c in candidates if
               c.model in gw.backends), default=0.0)
    if isinstance(multi, CascadeDecision):
        return len(multi.chain) * one
    if isinstance(multi, SetDecision):
        total = len(multi.members) * one
        aggregator = plan.aggregator if plan is not None else None
        if multi.aggregate and aggregator is not None and aggregator in gw.backends:
            total += bound(aggregator, len(multi.members) * tokens_out)
        return total
    return one


def _answered(rec: _Recorder, result: Answer | MultiCallResult, *, stream: bool = False,
              include_usage: bool = False) -> Response:
    """Record and return a complete answer (or a relayed client error); for a multi-call
    answer, every other paid call is charged too.

    With ``stream``, a successful answer is sent as a buffered SSE stream (``include_usage``:
    the client's ``stream_options.include_usage``); a relayed client error stays a JSON error.
    """
    if isinstance(result, MultiCallResult):
        result = rec.returned = result.answer
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


async def _multi_call(gw: Gateway, rec: _Recorder, text: str, body: dict[str, Any], mode: str,
                      decision: CascadeDecision | SetDecision | None,
                      plan: ProfilePlan) -> MultiCallResult:
    """Run a cascade or a top-k set; failures become the same errors as plain routing."""
    try:
        if mode == CASCADE:
            assert isinstance(decision, CascadeDecision)
            result = await run_cascade(gw, decision, plan.scorer, text, body, rec.id,
                                       rec.attempts, rec.paid)
            rec.extra_headers["x-polyroute-cascade"] = result.label
        else:
            assert isinstance(decision, SetDecision) and plan.aggregator is not None
            result = await run_topk(gw, decision, plan.aggregator, text, body, rec.id,
                                    rec.attempts, rec.paid)
            rec.extra_headers["x-polyroute-set"] = result.label
    except AllFailed as exc:
        raise _api_error(exc) from None
    return result


def _api_error(exc: AllFailed) -> APIError:
    headers = {"retry-after": str(math.ceil(exc.retry_after))} if exc.retry_after else None
    code = {503: "backend_unavailable", 504: "backend_timeout"}.get(exc.status, "backend_error")
    return APIError(exc.status, exc.message, code=code, headers=headers)

"""A request's record: everything learnt about one request, written to the store exactly once.

Every request that got past authentication — answered, refused, failed, cancelled or abandoned
by its client — ends in exactly one :class:`~polyroute.store.RequestRecord` written in one
transaction; one that reached routing also has its start row queued first (and its progress
while a stream runs), so a crash leaves it ``in_progress`` (marked ``interrupted`` at the next
start) rather than unrecorded. The stages fill a :class:`Recorder`; only :meth:`Recorder.finish`
writes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from polyroute.data.outcomes import ModelInfo, rule_cost
from polyroute.gateway.explain import compact_headers
from polyroute.gateway.forward import Answer
from polyroute.gateway.ids import request_id
from polyroute.gateway.shared.base import RateCharge
from polyroute.gateway.spend import Reservation
from polyroute.gateway.tracing import StageTimes
from polyroute.store import (
    CLIENT_CLOSED,
    INTERRUPTED,
    OK,
    Attempt,
    Candidate,
    RequestRecord,
    RequestStart,
)

if TYPE_CHECKING:
    from polyroute.gateway.service import Gateway


class Recorder:
    """Collects what is learnt about a request and writes its record exactly once."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.id = request_id()
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
        #: What the request counted against its key's rate-limit window (settled by ``finish``).
        self.rate: RateCharge | None = None
        #: The completion tokens each call's answer was capped at (client's or gateway's), when
        #: known: an answer that reaches it is a censored sample for the ceilings.
        self.output_cap: int | None = None
        #: ``stage: reason`` when a stage ended the request before it was served (a block, a
        #: cached answer): sent as ``x-polyroute-ended-by`` and kept as the record's error.
        self.ended_by: str | None = None
        #: The decision rule that fired, and the named route the request went to, if any.
        self.rule: str | None = None
        self.named_route: str | None = None
        #: The input guards' verdict (action, scores, span types and offsets; never values).
        self.guard: dict[str, Any] | None = None
        #: The request's conversation (its id as shown), the model its pin kept it on (None: not
        #: kept on a pin) and the pinning detail for the record.
        self.conversation_id: str | None = None
        self.pinned_model: str | None = None
        self.conversation: dict[str, Any] | None = None
        #: Dollars a cached answer saved this request (the original request's cost).
        self.saved = 0.0
        #: Once finished: the record's status and what the request cost (every paid call).
        self.status: str | None = None
        self.cost = 0.0
        self.done = False
        #: Each stage's (name, start ns, end ns), kept only when the gateway traces requests.
        self.stage_times: StageTimes | None = [] if gw.tracer is not None else None
        #: The decision explained beyond the record's columns, kept whole in the record
        #: (``explain``): shadow mode's routed choice, ... Each feature writes its own key.
        self.explain: dict[str, Any] = {}
        #: The stage running now and when it began (traced requests only).
        self.open_stage: tuple[str, int] | None = None
        #: Refused before it had a start row because the store cannot take more records: it is
        #: counted in the metrics, and no record is written (see ``stages/admit.py``).
        self.unrecorded = False

    @property
    def pinned(self) -> bool | None:
        """Whether the request was answered by the model its conversation's pin kept it on
        (None: conversations are off). A pinned model that failed, so that a fallback answered,
        makes this False."""
        if self.conversation_id is None:
            return None
        return self.pinned_model is not None and self.chosen == self.pinned_model

    def headers(self) -> dict[str, str]:
        h = {"x-polyroute-request-id": self.id}
        if self.chosen is not None:
            h["x-polyroute-model"] = self.chosen
            h["x-polyroute-fallbacks"] = str(sum(1 for a in self.attempts
                                                 if a.outcome not in ("ok", "passthrough")))
        if self.profile is not None:
            h["x-polyroute-profile"] = self.profile
        borrowed = [f"{c.model}={c.borrowed_from}" for c in self.candidates if c.borrowed_from]
        if borrowed:  # these candidates were estimated as another (known) model
            h["x-polyroute-borrowed"] = ",".join(borrowed)
        if self.ended_by is not None:
            h["x-polyroute-ended-by"] = self.ended_by
        h.update(compact_headers(self.policy, self.preference, self.candidates, self.attempts,
                                 self.explain))
        h.update(self.extra_headers)
        return h

    def start(self) -> None:
        self.gw.store.start_request(RequestStart(self.id, self.ts, self.key_id,
                                                 self.requested_model, self.profile, self.stream))

    def progress(self) -> None:
        """Queue the tries so far and the cost of what is being served (estimated until usage
        arrives), so that if the process dies now the ``interrupted`` row keeps them and the
        spend counts them; ``finish`` replaces it with the record."""
        charges = self._charges(None)
        sources = {c[4] for c in charges if c[4] is not None}
        self.gw.store.record_progress(
            self.id, tuple(self.attempts), chosen=self.chosen, cost=sum(c[3] for c in charges),
            cost_source=None if not sources else sources.pop() if len(sources) == 1 else "mixed")

    def finish(self, status: str, http_status: int, *, error: str | None = None,
               usage: dict[str, Any] | None = None, ttfb_ms: float | None = None,
               ended: float | None = None, kind: str | None = None) -> None:
        """Write the record (once) and count it; ``kind`` labels the error metric."""
        if self.done:
            return
        self.done = True
        gw = self.gw
        latency_s = (ended if ended is not None else time.perf_counter()) - self.t0
        try:
            charges = self._charges(usage)
        except BaseException:  # a bug: still give the reservation back, charging nothing
            gw.spend.settle(self.reservation, self.key_id, 0.0)
            raise
        cost = sum(c[3] for c in charges)
        # The one place a request's spend reservation is given back and its actual cost added,
        # as one step (no await; a shared ledger does both in one Redis script), before anything
        # that writes can fail.
        gw.spend.settle(self.reservation, self.key_id, cost)
        prompt_tokens, completion_tokens = _sum_tokens([c[1] for c in charges]), \
            _sum_tokens([c[2] for c in charges])
        gw.rates.settle(self.rate, None if prompt_tokens is None and completion_tokens is None
                        else (prompt_tokens or 0) + (completion_tokens or 0))
        self.status, self.cost = status, cost
        sources = {c[4] for c in charges if c[4] is not None}
        source = None if not sources else sources.pop() if len(sources) == 1 else "mixed"
        record = RequestRecord(
            id=self.id, ts=self.ts, status=status, http_status=http_status, key_id=self.key_id,
            requested_model=self.requested_model, profile=self.profile, stream=self.stream,
            policy=self.policy, preference=self.preference,
            prompt=self.text if gw.config.store.record_prompts else None,
            candidates=self.candidates, attempts=tuple(self.attempts), chosen=self.chosen,
            error=error if error is not None else self.ended_by,
            latency_ms=latency_s * 1000, decision_ms=self.decision_ms,
            ttfb_ms=ttfb_ms, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cost=cost, cost_source=source, finished_ts=time.time(), rule=self.rule,
            named_route=self.named_route, saved=self.saved, guard=self.guard,
            explain=self.explain or None,
            conversation_id=self.conversation_id, pinned=self.pinned,
            conversation=self.conversation)
        try:
            if not self.unrecorded:
                gw.store.finish_request(record)
            if gw.tracer is not None:
                stages = list(self.stage_times or [])
                if self.open_stage is not None:  # finished inside a stage (serve, usually)
                    stages.append((*self.open_stage, time.time_ns()))
                gw.tracer.record(record, stages)
        finally:
            gw.metrics.finished(self.route or "invalid", http_status, latency_s, self.stream)
            if status != OK:
                kind = kind or ("store_unavailable" if self.unrecorded
                                else _error_kind(status, http_status))
                gw.metrics.errors.labels(kind).inc()
            for name, pt, ct, c, _ in charges:
                gw.metrics.charged(name, c, pt, ct)
                if ct is not None:
                    gw.ceilings.observe(name, ct, self.output_cap)

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

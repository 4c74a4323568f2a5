"""Plain records the gateway hands to the store and the store hands back to the CLI.

They know nothing of HTTP or SQL: the gateway fills them, a :class:`~polyroute.store.base.Store`
persists them, ``polyroute logs`` and ``polyroute export-feedback`` read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Request statuses. ``in_progress`` is written when routing starts; every request ends in one of
#: the others, written in a single transaction.
IN_PROGRESS = "in_progress"
OK = "ok"
ERROR = "error"
CLIENT_CLOSED = "client_closed"
INTERRUPTED = "interrupted"
STATUSES = (IN_PROGRESS, OK, ERROR, CLIENT_CLOSED, INTERRUPTED)


@dataclass(frozen=True)
class Candidate:
    """One ranked candidate of a routing decision with the router's estimates."""

    model: str
    estimated_quality: float | None = None
    estimated_cost: float | None = None
    #: The known model whose estimates this backend borrowed (``like``), if any.
    borrowed_from: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One try of one backend. ``outcome`` is ``ok``, ``passthrough`` (a client error relayed
    as is), ``timeout``, ``connect_error``, ``http_<status>``, ``cooldown`` (skipped by the
    circuit breaker), ``saturated`` (no free slot), ``bad_response``, ``too_large`` or
    ``stream_error`` (the chosen backend's stream broke after bytes reached the client)."""

    backend: str
    outcome: str
    http_status: int | None = None
    error: str | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class RequestStart:
    """What is known when routing begins; recorded so a crash cannot lose the request."""

    id: str
    ts: float
    key_id: str | None
    requested_model: str | None
    profile: str | None
    stream: bool


@dataclass(frozen=True)
class RequestRecord:
    """Everything about one finished request, written in one transaction."""

    id: str
    ts: float
    status: str
    http_status: int
    key_id: str | None = None
    requested_model: str | None = None
    profile: str | None = None
    stream: bool = False
    policy: str | None = None
    preference: dict[str, Any] | None = None
    prompt: str | None = None
    candidates: tuple[Candidate, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    chosen: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    decision_ms: float | None = None
    ttfb_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float = 0.0
    #: ``usage`` (backend-reported tokens × prices), ``estimate`` (predicted) or None (no call).
    cost_source: str | None = None
    finished_ts: float | None = None
    #: The decision rule that fired (``rules[].name``) and the named route taken, if any.
    rule: str | None = None
    named_route: str | None = None
    #: Dollars a cached answer saved (the original request's cost); 0 when not served from cache.
    saved: float = 0.0
    #: The input guards' verdict when any guard is on (action, scores, reason, span types and
    #: offsets — never the values found).
    guard: dict[str, Any] | None = None
    #: The conversation the request belongs to (its id as shown), whether it was served on the
    #: conversation's pinned model, and the whole story when conversations are on (source, turn
    #: kind, pin key, pinned model, why it was kept or moved, estimated gain and cache loss).
    conversation_id: str | None = None
    pinned: bool | None = None
    conversation: dict[str, Any] | None = None
    #: The decision explained beyond the columns above (shadow mode's routed choice, ...).
    explain: dict[str, Any] | None = None

    @property
    def fallbacks(self) -> int:
        """Backends tried (or skipped) before the one that answered."""
        if self.chosen is None:
            return max(0, len(self.attempts) - 1) if self.attempts else 0
        return sum(1 for a in self.attempts
                   if a.outcome not in ("ok", "passthrough", "stream_error"))


@dataclass(frozen=True)
class FeedbackRecord:
    request_id: str
    score: float
    ts: float
    key_id: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class FeedbackTarget:
    """The request a feedback was stored against (what online learning needs)."""

    feedback_id: int
    request_id: str
    prompt: str | None
    chosen: str | None


@dataclass(frozen=True)
class KeyRecord:
    id: str
    sha256: str
    spend_limit: float | None
    spend_period: str


@dataclass(frozen=True)
class RequestSummary:
    """One logged request as the store reads it back: a row of ``polyroute logs`` and, whole,
    ``polyroute logs --id`` (decision, estimates, attempts, costs, every feedback score)."""

    id: str
    ts: float
    key_id: str | None
    requested_model: str | None
    profile: str | None
    status: str
    http_status: int | None
    chosen: str | None
    fallbacks: int
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float
    feedback: float | None = None
    error: str | None = None
    stream: bool = False
    decision_ms: float | None = None
    ttfb_ms: float | None = None
    candidates: tuple[Candidate, ...] = ()
    attempts: tuple[Attempt, ...] = field(default=())
    policy: str | None = None
    preference: dict[str, Any] | None = None
    prompt: str | None = None
    cost_source: str | None = None
    finished_ts: float | None = None
    #: Every feedback score, oldest first (``feedback`` above is the latest one).
    feedbacks: tuple[FeedbackRecord, ...] = ()
    rule: str | None = None
    named_route: str | None = None
    saved: float = 0.0
    guard: dict[str, Any] | None = None
    conversation_id: str | None = None
    pinned: bool | None = None
    conversation: dict[str, Any] | None = None
    explain: dict[str, Any] | None = None


@dataclass(frozen=True)
class ShadowComparison:
    """Shadow mode's blind pairwise judgement of one sampled request: the answer the client got
    (``served``, the default model) against the routed model's answer to the same request.

    ``verdict``: ``routed`` (the routed answer is better), ``served``, ``tie``, or None when the
    comparison could not be made (``detail`` says why). Costs are the operator's: the routed
    call and the judge call are not charged to the client's key."""

    request_id: str
    ts: float
    profile: str | None
    served: str
    routed: str
    verdict: str | None
    served_cost: float | None
    routed_cost: float
    judge_cost: float
    detail: str | None = None


@dataclass(frozen=True)
class ModelSpend:
    """Spend of one model (backend) over a period."""

    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


@dataclass(frozen=True)
class FeedbackExample:
    """A logged request with a feedback score: one (prompt, model, quality) cell for training."""

    request_id: str
    prompt: str
    profile: str | None
    model: str
    score: float
    cost: float
    latency_s: float | None


@dataclass(frozen=True)
class CalibrationAnswer:
    """One graded answer of a backend to a calibration prompt (``polyroute onboard``).

    Kept in the store as it arrives, so an interrupted onboarding resumes where it stopped and
    never pays twice for an answer it has. ``quality`` None = ungraded (or the call failed:
    then ``error`` says why, and ``cost`` is what it cost as far as known).
    """

    backend: str
    prompt_id: str
    prompt: str
    task: str
    answer: str | None
    quality: float | None
    cost: float
    latency_s: float | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    detail: str = ""
    error: str | None = None
    ts: float = 0.0


@dataclass(frozen=True)
class CachedAnswer:
    """One answer kept by the semantic cache, with what finds it again.

    ``partition`` is the cache's key (client key scope, profile, parameter fingerprint);
    ``exact`` the hash of the whole request within it; ``embedding`` the routing text's
    embedding as float32 bytes; ``answer`` the complete chat-completion JSON as returned.
    """

    id: int
    partition: str
    category: str
    exact: str
    text: str
    embedding: bytes
    answer: bytes
    model: str
    cost: float
    created_ts: float
    expires_ts: float


@dataclass(frozen=True)
class StoredResponse:
    """One answer of the Responses API, kept so that a later request can continue from it
    (``previous_response_id``) and ``GET /v1/responses/{id}`` can return it.

    ``items`` is the conversation up to and including this answer as Responses input items
    (JSON): the previous response's items, this request's input, then this answer's output
    items. ``response`` is the Response object as the client got it (JSON). ``key_id`` is the
    client key that created it: only that key may read or continue it.
    """

    id: str
    key_id: str | None
    created_ts: float
    model: str
    items: str
    response: str


@dataclass(frozen=True)
class ConversationPin:
    """The model a conversation is pinned to, kept under ``key`` (a hash; see
    ``polyroute.conversations.identity``) until ``expires_ts`` (its last turn + the idle time).

    ``fallbacks`` are the other candidates of its last routing decision, in order, so a turn
    served on the pin without asking the router still has somewhere to fall back to;
    ``estimated_cost`` is the pinned model's estimated cost of that decision's turn.
    """

    key: str
    conversation_id: str
    model: str
    key_id: str | None
    profile: str | None
    turns: int
    prefix_tokens: int
    fallbacks: tuple[str, ...]
    estimated_cost: float | None
    created_ts: float
    last_ts: float
    expires_ts: float

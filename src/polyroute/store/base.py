"""The Store interface: the gateway's state (requests, decisions, feedback, keys, spend).

Why an interface: SQLite is right for one gateway process; replicas will need a shared database
later. The gateway only calls these methods, so a second implementation slots in without touching
HTTP code. Writes made on the request path (``start_request``, ``record_progress``,
``finish_request``) must not block:
implementations queue them and commit in order; ``flush`` waits until all queued writes are
committed, ``close`` flushes and releases everything.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future

from polyroute.store.records import (
    Attempt,
    CachedAnswer,
    CalibrationAnswer,
    ConversationPin,
    FeedbackExample,
    FeedbackRecord,
    FeedbackTarget,
    KeyRecord,
    ModelSpend,
    RequestRecord,
    RequestStart,
    RequestSummary,
    ShadowComparison,
    StoredResponse,
)


class Store(ABC):
    """Persistent gateway state. Write methods are safe to call from the event loop."""

    #: Where the store lives, for messages (a file path, or a URL without its password).
    location: str = "<store>"

    # -- writes (queued, ordered) ----------------------------------------------------------------
    @abstractmethod
    def start_request(self, start: RequestStart) -> None:
        """Record that a request began routing (status ``in_progress``); does not block."""

    @abstractmethod
    def record_progress(self, request_id: str, attempts: Sequence[Attempt], *,
                        chosen: str | None, cost: float, cost_source: str | None) -> None:
        """Record, while a request is still ``in_progress``, the backend tries made so far and
        the cost known (or estimated) of what was served; does not block.

        Why: a gateway killed mid-request never writes its record, and its row is marked
        ``interrupted`` at the next start; with this the row keeps what backends served and
        recovery books that cost as spend. Ignored once the request is finished (the finished
        record replaces it).
        """

    @abstractmethod
    def finish_request(self, record: RequestRecord) -> None:
        """Record a finished request — row, candidates, attempts, spend — in one transaction."""

    @abstractmethod
    def add_feedback(self, feedback: FeedbackRecord, *, owner_check: bool = True
                     ) -> Future[FeedbackTarget]:
        """Store a feedback score against its request.

        The future fails with :class:`~polyroute.errors.StoreError` if the request is unknown or,
        with ``owner_check``, was made with another client key.
        """

    @abstractmethod
    def record_calibration(self, answer: CalibrationAnswer) -> None:
        """Keep one onboarding answer (replacing an earlier failed one for the same prompt)."""

    @abstractmethod
    def calibration_answers(self, backend: str | None = None) -> list[CalibrationAnswer]:
        """Onboarding answers kept so far (of one backend, or all), oldest first."""

    @abstractmethod
    def sync_keys(self, keys: Sequence[KeyRecord]) -> None:
        """Make the stored client keys equal to ``keys`` (others are marked inactive)."""

    # -- the semantic cache's answers (writes queued like the rest) -------------------------------
    @abstractmethod
    def put_cached_answer(self, entry: CachedAnswer) -> None:
        """Keep (or replace) one cached answer; does not block."""

    @abstractmethod
    def delete_cached_answers(self, ids: Sequence[int]) -> None:
        """Forget evicted or expired cached answers; does not block."""

    @abstractmethod
    def cached_answers(self, now: float) -> list[CachedAnswer]:
        """The cached answers not expired at the unix time ``now``, oldest first."""

    # -- the Responses API's conversations -------------------------------------------------------
    @abstractmethod
    def put_response(self, entry: StoredResponse) -> None:
        """Keep one Responses answer and its conversation; does not block."""

    @abstractmethod
    def get_response(self, response_id: str) -> StoredResponse | None:
        """The kept answer with this id (None if unknown), after every queued write."""

    # -- conversation pins (``polyroute.conversations.pins`` adapts these) ------------------------
    @abstractmethod
    def get_pin(self, key: str, now: float) -> ConversationPin | None:
        """The pin kept under ``key`` unless it expired before the unix time ``now``."""

    @abstractmethod
    def put_pin(self, pin: ConversationPin) -> None:
        """Keep (or replace) the pin under ``pin.key``; does not block."""

    @abstractmethod
    def expire_pins(self, now: float) -> None:
        """Forget the pins that expired before ``now``; does not block."""

    # -- reads -----------------------------------------------------------------------------------
    @abstractmethod
    def get_request(self, request_id: str) -> RequestSummary | None: ...

    @abstractmethod
    def recent_requests(self, limit: int = 20) -> list[RequestSummary]: ...

    @abstractmethod
    def requests_between(self, since: float | None = None, until: float | None = None
                         ) -> Iterator[RequestSummary]:
        """Requests started in [since, until), oldest first, read in pages (a report over
        months of traffic never holds the whole log)."""

    @abstractmethod
    def record_shadow_comparison(self, comparison: ShadowComparison) -> None:
        """Keep shadow mode's judgement of one sampled request; does not block."""

    @abstractmethod
    def shadow_comparisons(self, since: float | None = None,
                           until: float | None = None) -> list[ShadowComparison]:
        """Shadow comparisons made in [since, until), oldest first."""

    @abstractmethod
    def spend_by_model(self, since: float | None = None) -> list[ModelSpend]:
        """Requests, tokens and dollars per model since the unix time ``since`` (all if None)."""

    @abstractmethod
    def spend_by_key(self, since: float | None = None) -> dict[str, float]:
        """Dollars spent per client key id since ``since`` (all if None)."""

    @abstractmethod
    def feedback_examples(self) -> Iterable[FeedbackExample]:
        """Finished requests that received feedback, oldest first (latest score per request),
        read in pages: retraining from a large log streams them (see store.export)."""

    @abstractmethod
    def count_feedback(self) -> tuple[int, int]:
        """(feedback rows, requests with feedback that cannot be exported: failed, or their
        prompt was not recorded)."""

    # -- the write queue, as the gateway's admission and metrics see it --------------------------
    @property
    def pending_writes(self) -> int:
        """Writes queued and not committed yet."""
        return 0

    @property
    def write_limit(self) -> int | None:
        """How many queued writes make the store :attr:`saturated` (None: no limit)."""
        return None

    @property
    def saturated(self) -> bool:
        """True while so many writes wait (the database unreachable) that the gateway must
        refuse new requests rather than queue more: every record already queued is kept."""
        return False

    @property
    def reachable(self) -> bool:
        """False while the writer cannot reach the database (writes queue in memory)."""
        return True

    # -- lifecycle -------------------------------------------------------------------------------
    @abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Block until every write queued so far is committed."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release; further writes raise."""

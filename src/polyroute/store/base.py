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
    FeedbackExample,
    FeedbackRecord,
    FeedbackTarget,
    KeyRecord,
    ModelSpend,
    RequestRecord,
    RequestStart,
    RequestSummary,
    ShadowComparison,
)


class Store(ABC):
    """Persistent gateway state. Write methods are safe to call from the event loop."""

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

    # -- lifecycle -------------------------------------------------------------------------------
    @abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Block until every write queued so far is committed."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release; further writes raise."""

"""Every Store method as SQL, written once for SQLite and PostgreSQL.

Why a shared base: the two stores differ in how they connect, queue writes and recover from a
lost connection — not in what they write. :class:`SQLStore` holds every query (``?``
parameters, the SQL both dialects share; see :mod:`polyroute.store.dialect`) and leaves three
things to a subclass: :meth:`SQLStore._submit` (queue one write job, run later in its own
transaction, in order), :meth:`SQLStore._read` (a connection to read from, optionally one
consistent snapshot) and the lifecycle (``flush``, ``close``).

Both stores keep their writer in ``_writer`` (None when opened read-only): anything with
``submit(job, wait=)``, ``pending`` and ``failed_writes``.

A job or a read receives a *connection-like* object: ``execute(sql, params)`` returning a cursor
(``fetchone``, ``fetchall``, iteration, ``rowcount``) and ``executemany(sql, rows)``. A
``sqlite3.Connection`` is one; :class:`~polyroute.store.postgres.PgConnection` wraps psycopg's.

One row per request, finished exactly once: ``finish_request`` writes the record only while the
row is absent or ``in_progress``; a second finish of the same request (a retried write after a
lost connection, whose first commit did go through) changes nothing — so spend is never booked
twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import cached_property
from typing import Any, Protocol

from polyroute.errors import StoreError
from polyroute.store.base import Store
from polyroute.store.records import (
    IN_PROGRESS,
    INTERRUPTED,
    Attempt,
    CachedAnswer,
    CalibrationAnswer,
    Candidate,
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

logger = logging.getLogger(__name__)


class Conn(Protocol):
    """What the queries need of a connection (``sqlite3.Connection`` has exactly this)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


Job = Callable[[Conn], Any]


def utc_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


class SQLStore(Store):
    """The queries of every store method; subclasses supply the connections and the writer."""

    _writer: Any = None
    #: Whether several gateway processes may share this store (then each heartbeats, and
    #: recovers only the requests of replicas that stopped: :meth:`recover_abandoned`).
    shared_by_replicas = False
    #: Seconds without a heartbeat after which a replica counts as stopped.
    replica_dead_after = 30.0

    # -- what a subclass supplies ----------------------------------------------------------------
    def _submit(self, job: Job, *, wait: bool = False) -> Future | None:
        """Queue ``job`` to run in its own transaction after every job queued before it; with
        ``wait`` a future of its result. Raises :class:`StoreError` once closed or read-only."""
        if self._writer is None:
            raise StoreError(f"{self.location}: opened read-only")
        return self._writer.submit(job, wait=wait)

    @property
    def failed_writes(self) -> int:
        """Fire-and-forget writes that failed (each was logged and rolled back)."""
        return self._writer.failed_writes if self._writer else 0

    @property
    def pending_writes(self) -> int:
        return self._writer.pending if self._writer else 0

    @abstractmethod
    def _read(self, *, snapshot: bool = False) -> AbstractContextManager[Conn]:
        """A connection to read from; with ``snapshot`` all its statements see one commit."""

    # -- writes ----------------------------------------------------------------------------------
    @cached_property
    def instance(self) -> str:
        """This process's id as the owner of the requests it starts (a replica's lease)."""
        return uuid.uuid4().hex

    def start_request(self, start: RequestStart) -> None:
        row = (start.id, start.ts, start.key_id, start.requested_model, start.profile,
               int(start.stream), IN_PROGRESS, self.instance)
        self._submit(lambda conn: conn.execute(
            "INSERT INTO requests (id, ts, key_id, requested_model, profile, stream, status, "
            "owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", row))

    # -- replicas sharing the store --------------------------------------------------------------
    def heartbeat(self, now: float | None = None) -> None:
        """Say this process is alive (its in-progress requests are not to be recovered)."""
        now = time.time() if now is None else now
        row = (self.instance, now, now)
        self._submit(lambda conn: conn.execute(
            "INSERT INTO replicas (id, started_ts, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen", row))

    def recover_abandoned(self, dead_after: float, now: float | None = None) -> Future[int]:
        """Mark ``interrupted`` the in-progress requests of replicas not seen for
        ``dead_after`` seconds (never this one's), booking what they served; a future of how
        many. Every replica runs this now and then, so a killed replica's requests are closed
        by the others without waiting for it to come back."""
        alive_since = (time.time() if now is None else now) - dead_after
        future = self._submit(lambda conn: recover(conn, alive_since=alive_since,
                                                   keep=self.instance), wait=True)
        assert future is not None
        return future

    def record_progress(self, request_id: str, attempts: Sequence[Attempt], *,
                        chosen: str | None, cost: float, cost_source: str | None) -> None:
        attempts = tuple(attempts)
        fallbacks = RequestRecord(request_id, 0.0, IN_PROGRESS, 0, attempts=attempts,
                                  chosen=chosen).fallbacks  # the one definition of fallbacks

        def job(conn: Conn) -> None:
            if conn.execute("UPDATE requests SET chosen = ?, fallbacks = ?, cost = ?, "
                            "cost_source = ? WHERE id = ? AND status = ? RETURNING id",
                            (chosen, fallbacks, float(cost), cost_source, request_id,
                             IN_PROGRESS)).fetchone() is None:
                return  # finished already (or never started): the record has the last word
            _write_attempts(conn, request_id, attempts)

        self._submit(job)

    def finish_request(self, record: RequestRecord) -> None:
        self._submit(lambda conn: write_record(conn, record))

    def add_feedback(self, feedback: FeedbackRecord, *, owner_check: bool = True
                     ) -> Future[FeedbackTarget]:
        def job(conn: Conn) -> FeedbackTarget:
            row = conn.execute("SELECT key_id, prompt, chosen FROM requests WHERE id = ?",
                               (feedback.request_id,)).fetchone()
            if row is None or (owner_check and row[0] != feedback.key_id):
                raise StoreError(f"no request with id {feedback.request_id!r}")
            [feedback_id] = conn.execute(
                "INSERT INTO feedback (request_id, ts, key_id, score, comment) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (feedback.request_id, feedback.ts, feedback.key_id, float(feedback.score),
                 feedback.comment)).fetchone()
            return FeedbackTarget(int(feedback_id), feedback.request_id, row[1], row[2])

        future = self._submit(job, wait=True)
        assert future is not None
        return future

    def record_calibration(self, answer: CalibrationAnswer) -> None:
        a = answer
        row = (a.backend, a.prompt_id, a.prompt, a.task, a.answer, a.quality, float(a.cost),
               a.latency_s, a.prompt_tokens, a.completion_tokens, a.detail, a.error,
               a.ts or time.time())
        sql = _upsert("calibration_answers", _CALIBRATION_COLUMNS, ("backend", "prompt_id"))
        self._submit(lambda conn: conn.execute(sql, row))

    def calibration_answers(self, backend: str | None = None) -> list[CalibrationAnswer]:
        where, args = ("WHERE backend = ?", (backend,)) if backend is not None else ("", ())
        with self._read() as conn:
            rows = conn.execute(f"SELECT {', '.join(_CALIBRATION_COLUMNS)} FROM "
                                f"calibration_answers {where} ORDER BY ts, backend, prompt_id",
                                args).fetchall()
        return [CalibrationAnswer(*r[:10], detail=r[10], error=r[11], ts=r[12]) for r in rows]

    def sync_keys(self, keys: Sequence[KeyRecord]) -> None:
        now = time.time()

        def job(conn: Conn) -> None:
            conn.execute("UPDATE keys SET active = 0")
            if keys:
                conn.executemany(
                    "INSERT INTO keys (id, sha256, spend_limit, spend_period, active, updated_ts) "
                    "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO UPDATE SET "
                    "sha256 = excluded.sha256, spend_limit = excluded.spend_limit, "
                    "spend_period = excluded.spend_period, active = 1, "
                    "updated_ts = excluded.updated_ts",
                    [(k.id, k.sha256, k.spend_limit, k.spend_period, now) for k in keys])

        self._submit(job)

    # -- the semantic cache's answers ------------------------------------------------------------
    def put_cached_answer(self, entry: CachedAnswer) -> None:
        e = entry
        row = (e.id, e.partition, e.category, e.exact, e.text, e.embedding, e.answer, e.model,
               float(e.cost), e.created_ts, e.expires_ts)
        sql = _upsert("cached_answers", _CACHED_COLUMNS, ("id",))
        self._submit(lambda conn: conn.execute(sql, row))

    def delete_cached_answers(self, ids: Sequence[int]) -> None:
        rows = [(int(i),) for i in ids]
        if rows:
            self._submit(lambda conn: conn.executemany(
                "DELETE FROM cached_answers WHERE id = ?", rows))

    def cached_answers(self, now: float) -> list[CachedAnswer]:
        """Every cached answer not expired at ``now``, oldest first (what the cache reloads);
        expired ones are deleted."""
        self._submit(lambda conn: conn.execute(
            "DELETE FROM cached_answers WHERE expires_ts <= ?", (now,)))
        with self._read() as conn:
            rows = conn.execute(f"SELECT {', '.join(_CACHED_COLUMNS)} FROM cached_answers "
                                f"WHERE expires_ts > ? ORDER BY created_ts, id",
                                (now,)).fetchall()
        return [CachedAnswer(*r[:5], bytes(r[5]), bytes(r[6]), *r[7:]) for r in rows]

    # -- reads -----------------------------------------------------------------------------------
    def get_request(self, request_id: str) -> RequestSummary | None:
        with self._read(snapshot=True) as conn:
            rows = conn.execute(_SUMMARY_SQL + " WHERE r.id = ?", (request_id,)).fetchall()
            return _with_details(conn, rows)[0] if rows else None

    def requests_between(self, since: float | None = None, until: float | None = None
                         ) -> Iterator[RequestSummary]:
        where, args = _window("r.ts", since, until)
        last: tuple[float, str] | None = None
        while True:  # keyset pages, each its own snapshot: never the whole log in memory
            page_where = where + ([] if last is None else ["(r.ts > ? OR (r.ts = ? AND r.id > ?))"])
            page_args = args + ([] if last is None else [last[0], last[0], last[1]])
            sql = (_SUMMARY_SQL + (" WHERE " + " AND ".join(page_where) if page_where else "")
                   + " ORDER BY r.ts, r.id LIMIT ?")
            with self._read(snapshot=True) as conn:
                rows = conn.execute(sql, (*page_args, _IDS_PER_QUERY)).fetchall()
                page = _with_details(conn, rows)
            yield from page
            if len(rows) < _IDS_PER_QUERY:
                return
            last = (page[-1].ts, page[-1].id)

    # -- shadow mode's comparisons ---------------------------------------------------------------
    def record_shadow_comparison(self, comparison: ShadowComparison) -> None:
        c = comparison
        row = (c.request_id, c.ts, c.profile, c.served, c.routed, c.verdict, c.served_cost,
               float(c.routed_cost), float(c.judge_cost), c.detail)
        sql = _upsert("shadow_comparisons", _SHADOW_COLUMNS, ("request_id",))
        self._submit(lambda conn: conn.execute(sql, row))

    def shadow_comparisons(self, since: float | None = None,
                           until: float | None = None) -> list[ShadowComparison]:
        where, args = _window("ts", since, until)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_SHADOW_COLUMNS)} FROM shadow_comparisons"
                + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY ts",
                args).fetchall()
        return [ShadowComparison(*r) for r in rows]

    # -- the Responses API's conversations -------------------------------------------------------
    def put_response(self, entry: StoredResponse) -> None:
        e = entry
        row = (e.id, e.key_id, e.created_ts, e.model, e.items, e.response)
        sql = _upsert("responses", _RESPONSE_COLUMNS, ("id",))
        self._submit(lambda conn: conn.execute(sql, row))

    def get_response(self, response_id: str) -> StoredResponse | None:
        """Flushes first: a client continues from the answer it has just been sent."""
        self.flush()
        with self._read() as conn:
            row = conn.execute(f"SELECT {', '.join(_RESPONSE_COLUMNS)} FROM responses "
                               f"WHERE id = ?", (response_id,)).fetchone()
        return StoredResponse(*row) if row is not None else None

    # -- conversation pins -----------------------------------------------------------------------
    def get_pin(self, key: str, now: float) -> ConversationPin | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {', '.join(_PIN_COLUMNS)} FROM conversation_pins "
                               f"WHERE key = ? AND expires_ts > ?", (key, now)).fetchone()
        if row is None:
            return None
        return ConversationPin(*row[:7], fallbacks=tuple(json.loads(row[7])),
                               estimated_cost=row[8], created_ts=row[9], last_ts=row[10],
                               expires_ts=row[11])

    def put_pin(self, pin: ConversationPin) -> None:
        p = pin
        row = (p.key, p.conversation_id, p.model, p.key_id, p.profile, int(p.turns),
               int(p.prefix_tokens), json.dumps(list(p.fallbacks)), p.estimated_cost,
               p.created_ts, p.last_ts, p.expires_ts)
        sql = _upsert("conversation_pins", _PIN_COLUMNS, ("key",))
        self._submit(lambda conn: conn.execute(sql, row))

    def expire_pins(self, now: float) -> None:
        self._submit(lambda conn: conn.execute(
            "DELETE FROM conversation_pins WHERE expires_ts <= ?", (now,)))

    def recent_requests(self, limit: int = 20) -> list[RequestSummary]:
        with self._read(snapshot=True) as conn:
            rows = conn.execute(_SUMMARY_SQL + " ORDER BY r.ts DESC, r.id LIMIT ?",
                                (int(limit),)).fetchall()
            return _with_details(conn, rows)

    def spend_by_model(self, since: float | None = None) -> list[ModelSpend]:
        day = utc_day(since) if since is not None else ""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT model, SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), "
                "SUM(cost) FROM spend WHERE day >= ? GROUP BY model "
                "ORDER BY SUM(cost) DESC, model", (day,)).fetchall()
        return [ModelSpend(m, int(n), int(p), int(c), float(s)) for m, n, p, c, s in rows]

    def spend_by_key(self, since: float | None = None) -> dict[str, float]:
        day = utc_day(since) if since is not None else ""
        with self._read() as conn:
            rows = conn.execute("SELECT key_id, SUM(cost) FROM spend WHERE day >= ? "
                                "GROUP BY key_id", (day,)).fetchall()
        return {k: float(c) for k, c in rows if k}

    def feedback_examples(self) -> Iterator[FeedbackExample]:
        last: tuple[float, str] | None = None
        while True:  # keyset pages on (ts, id): a retraining read never holds the whole log
            after = "" if last is None else " AND (r.ts > ? OR (r.ts = ? AND r.id > ?))"
            args = () if last is None else (last[0], last[0], last[1])
            with self._read() as conn:
                rows = conn.execute(f"""
                    SELECT r.id, r.prompt, r.profile, r.chosen, f.score, r.cost, r.latency_ms,
                           r.ts
                    FROM requests r
                    JOIN feedback f ON f.id = (SELECT MAX(id) FROM feedback
                                               WHERE request_id = r.id)
                    WHERE r.chosen IS NOT NULL AND r.prompt IS NOT NULL AND r.status = 'ok'
                    {after}
                    ORDER BY r.ts, r.id LIMIT ?""", (*args, FEEDBACK_PER_PAGE)).fetchall()
            yield from (FeedbackExample(i, p, prof, m, float(s), float(c or 0.0),
                                        None if lat is None else lat / 1000.0)
                        for i, p, prof, m, s, c, lat, _ts in rows)
            if len(rows) < FEEDBACK_PER_PAGE:
                return
            last = (rows[-1][7], rows[-1][0])

    def count_feedback(self) -> tuple[int, int]:
        """(feedback rows, requests with feedback that cannot be exported)."""
        with self._read() as conn:
            total = conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
            unusable = conn.execute("""
                SELECT COUNT(DISTINCT f.request_id) FROM feedback f JOIN requests r
                ON r.id = f.request_id
                WHERE r.chosen IS NULL OR r.prompt IS NULL OR r.status != 'ok'
            """).fetchone()[0]
        return int(total), int(unusable)


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...], where: str = "") -> str:
    """Insert a row or replace the one with the same ``key`` (both dialects' spelling); with
    ``where``, replace only a row it holds for."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(key)}) "
            f"DO UPDATE SET {updates}" + (f" WHERE {where}" if where else ""))


def _window(column: str, since: float | None, until: float | None
            ) -> tuple[list[str], list[float]]:
    """``[since, until)`` on ``column`` as WHERE terms and their parameters."""
    where, args = [], []
    if since is not None:
        where.append(f"{column} >= ?")
        args.append(float(since))
    if until is not None:
        where.append(f"{column} < ?")
        args.append(float(until))
    return where, args


_SHADOW_COLUMNS = ("request_id", "ts", "profile", "served", "routed", "verdict", "served_cost",
                   "routed_cost", "judge_cost", "detail")

_RESPONSE_COLUMNS = ("id", "key_id", "created_ts", "model", "items", "response")

_PIN_COLUMNS = ("key", "conversation_id", "model", "key_id", "profile", "turns",
                "prefix_tokens", "fallbacks", "estimated_cost", "created_ts", "last_ts",
                "expires_ts")

_CACHED_COLUMNS = ("id", "partition", "category", "exact", "text", "embedding", "answer",
                   "model", "cost", "created_ts", "expires_ts")

_CALIBRATION_COLUMNS = ("backend", "prompt_id", "prompt", "task", "answer", "quality", "cost",
                        "latency_s", "prompt_tokens", "completion_tokens", "detail", "error", "ts")

_SUMMARY_SQL = """
    SELECT r.id, r.ts, r.key_id, r.requested_model, r.profile, r.status, r.http_status, r.chosen,
           r.fallbacks, r.latency_ms, r.prompt_tokens, r.completion_tokens, r.cost,
           (SELECT score FROM feedback f WHERE f.request_id = r.id ORDER BY f.id DESC LIMIT 1),
           r.error, r.stream, r.decision_ms, r.ttfb_ms, r.policy, r.preference, r.prompt,
           r.cost_source, r.finished_ts, r.rule, r.named_route, r.saved, r.guard, r.explain,
           r.conversation_id, r.pinned, r.conversation
    FROM requests r"""


def _summary(row: tuple) -> RequestSummary:
    return RequestSummary(*row[:12], cost=float(row[12] or 0.0), feedback=row[13],
                          error=row[14], stream=bool(row[15]), decision_ms=row[16],
                          ttfb_ms=row[17], policy=row[18],
                          preference=None if row[19] is None else json.loads(row[19]),
                          prompt=row[20], cost_source=row[21], finished_ts=row[22],
                          rule=row[23], named_route=row[24],
                          saved=float(row[25] or 0.0),
                          guard=None if row[26] is None else json.loads(row[26]),
                          explain=None if row[27] is None else json.loads(row[27]),
                          conversation_id=row[28],
                          pinned=None if row[29] is None else bool(row[29]),
                          conversation=None if row[30] is None else json.loads(row[30]))


#: Feedback examples per page of :meth:`SQLStore.feedback_examples`.
FEEDBACK_PER_PAGE = 5000

#: Ids per ``IN (...)`` query: well below SQLite's limit on bound parameters.
_IDS_PER_QUERY = 500


def _with_details(conn: Conn, rows: list[tuple]) -> list[RequestSummary]:
    """The summaries of ``rows`` with their candidates, attempts and feedback filled in; each
    child table is read once per chunk of ids, not once per request."""
    summaries = [_summary(row) for row in rows]
    ids = [s.id for s in summaries]
    cands: dict[str, list[Candidate]] = {}
    atts: dict[str, list[Attempt]] = {}
    fbs: dict[str, list[FeedbackRecord]] = {}
    for i in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[i:i + _IDS_PER_QUERY]
        match = f"WHERE request_id IN ({', '.join('?' * len(chunk))})"
        for rid, m, q, c, b in conn.execute(
                "SELECT request_id, model, estimated_quality, estimated_cost, borrowed_from "
                "FROM candidates "
                f"{match} ORDER BY request_id, rank", chunk):
            cands.setdefault(rid, []).append(Candidate(m, q, c, b))
        for rid, b, o, st, e, lat in conn.execute(
                "SELECT request_id, backend, outcome, http_status, error, latency_ms "
                f"FROM attempts {match} ORDER BY request_id, n", chunk):
            atts.setdefault(rid, []).append(Attempt(b, o, st, e, lat))
        for rid, score, ts, key, comment in conn.execute(
                f"SELECT request_id, score, ts, key_id, comment FROM feedback {match} "
                "ORDER BY id", chunk):
            fbs.setdefault(rid, []).append(FeedbackRecord(rid, float(score), ts, key, comment))
    return [replace(s, candidates=tuple(cands.get(s.id, ())), attempts=tuple(atts.get(s.id, ())),
                    feedbacks=tuple(fbs.get(s.id, ()))) for s in summaries]


def _charged_model(r: RequestRecord) -> str | None:
    """The model a request's spend is booked under: the one that answered; for a request that
    paid for calls but returned no answer (a client leaving mid-cascade), the last backend that
    answered — so its cost counts in ``spend_by_key`` and limits survive a restart."""
    if r.chosen is not None:
        return r.chosen
    if r.cost > 0:
        answered = [a.backend for a in r.attempts if a.outcome == "ok"]
        if answered:
            return answered[-1]
    return None


_RECORD_COLUMNS = ("id", "ts", "finished_ts", "key_id", "requested_model", "profile", "stream",
                   "policy", "preference", "prompt", "status", "http_status", "error", "chosen",
                   "fallbacks", "latency_ms", "decision_ms", "ttfb_ms", "prompt_tokens",
                   "completion_tokens", "cost", "cost_source", "rule", "named_route", "saved",
                   "guard", "explain", "conversation_id", "pinned", "conversation")

#: The record replaces the request's row only while it is in progress; RETURNING says whether it
#: did (one statement: no read-then-write round trip).
_WRITE_RECORD_SQL = _upsert("requests", _RECORD_COLUMNS, ("id",),
                            where=f"requests.status = '{IN_PROGRESS}'") + " RETURNING id"


def write_record(conn: Conn, r: RequestRecord) -> bool:
    """The whole record of one request, inside the caller's transaction; False (and nothing
    written) if the request was already finished."""
    finished = r.finished_ts if r.finished_ts is not None else time.time()
    written = conn.execute(_WRITE_RECORD_SQL, (
        r.id, r.ts, finished, r.key_id, r.requested_model, r.profile, int(r.stream), r.policy,
        None if r.preference is None else json.dumps(r.preference), r.prompt, r.status,
        r.http_status, r.error, r.chosen, r.fallbacks, r.latency_ms, r.decision_ms, r.ttfb_ms,
        r.prompt_tokens, r.completion_tokens, float(r.cost), r.cost_source, r.rule,
        r.named_route, float(r.saved), None if r.guard is None else json.dumps(r.guard),
        None if not r.explain else json.dumps(r.explain), r.conversation_id,
        None if r.pinned is None else int(r.pinned),
        None if r.conversation is None else json.dumps(r.conversation))
    ).fetchone()
    if written is None:
        logger.debug("request %s is finished already; its record is not written twice", r.id)
        return False
    conn.execute("DELETE FROM candidates WHERE request_id = ?", (r.id,))
    if r.candidates:
        conn.executemany("INSERT INTO candidates (request_id, rank, model, estimated_quality, "
                         "estimated_cost, borrowed_from) VALUES (?, ?, ?, ?, ?, ?)",
                         [(r.id, i, c.model, c.estimated_quality, c.estimated_cost,
                           c.borrowed_from) for i, c in enumerate(r.candidates)])
    _write_attempts(conn, r.id, r.attempts)
    charged = _charged_model(r)
    if charged is not None:
        _add_spend(conn, r.key_id, charged, r.ts, r.prompt_tokens, r.completion_tokens, r.cost)
    return True


def _write_attempts(conn: Conn, request_id: str, attempts: Sequence[Attempt]) -> None:
    conn.execute("DELETE FROM attempts WHERE request_id = ?", (request_id,))
    if attempts:
        conn.executemany("INSERT INTO attempts (request_id, n, backend, outcome, http_status, "
                         "error, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(request_id, i, a.backend, a.outcome, a.http_status, a.error,
                           a.latency_ms) for i, a in enumerate(attempts)])


def _add_spend(conn: Conn, key_id: str | None, model: str, ts: float,
               prompt_tokens: int | None, completion_tokens: int | None, cost: float) -> None:
    conn.execute("""
        INSERT INTO spend (key_id, model, day, requests, prompt_tokens, completion_tokens, cost)
        VALUES (?, ?, ?, 1, ?, ?, ?)
        ON CONFLICT (key_id, model, day) DO UPDATE SET requests = spend.requests + 1,
            prompt_tokens = spend.prompt_tokens + excluded.prompt_tokens,
            completion_tokens = spend.completion_tokens + excluded.completion_tokens,
            cost = spend.cost + excluded.cost
    """, (key_id or "", model, utc_day(ts), int(prompt_tokens or 0), int(completion_tokens or 0),
          float(cost)))


def recover(conn: Conn, *, alive_since: float | None = None, keep: str | None = None) -> int:
    """Mark the requests a previous run left ``in_progress`` as ``interrupted``, booking as spend
    what their progress rows say was served; runs inside the caller's transaction (a crash here
    changes nothing).

    Without ``alive_since`` every in-progress request is (one process owns the store). With it,
    only those whose owner has not been seen since then — and never ``keep``'s (the caller's
    own); a request with no owner counts as abandoned once it is older than ``alive_since``."""
    if alive_since is None:
        rows = conn.execute("SELECT id, ts, key_id, chosen, cost, prompt_tokens, "
                            "completion_tokens FROM requests WHERE status = ?",
                            (IN_PROGRESS,)).fetchall()
    else:
        rows = conn.execute(
            "SELECT id, ts, key_id, chosen, cost, prompt_tokens, completion_tokens "
            "FROM requests r WHERE status = ? AND (r.owner IS NULL AND r.ts < ? OR "
            "r.owner IS NOT NULL AND r.owner != ? AND NOT EXISTS (SELECT 1 FROM replicas p "
            "WHERE p.id = r.owner AND p.last_seen >= ?))",
            (IN_PROGRESS, alive_since, keep or "", alive_since)).fetchall()
    for rid, ts, key_id, chosen, cost, pt, ct in rows:
        attempts = tuple(Attempt(b, o) for b, o in conn.execute(
            "SELECT backend, outcome FROM attempts WHERE request_id = ? ORDER BY n",
            (rid,)).fetchall())
        charged = _charged_model(RequestRecord(rid, ts, INTERRUPTED, 0, attempts=attempts,
                                               chosen=chosen, cost=float(cost or 0.0)))
        if charged is not None:
            _add_spend(conn, key_id, charged, ts, pt, ct, float(cost or 0.0))
    if rows:
        conn.executemany("UPDATE requests SET status = ?, error = ? WHERE id = ? AND status = ?",
                         [(INTERRUPTED, "the gateway stopped before this request finished",
                           rid, IN_PROGRESS) for rid, *_ in rows])
    return len(rows)


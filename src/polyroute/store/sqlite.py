"""The SQLite store: WAL mode, one transaction per request, every write through one writer thread.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of the process (the committed WAL
is in the OS); only a power cut can lose the last commits. A request's start row is queued before
routing, so a request in flight when the process dies is found on the next start and marked
``interrupted`` (``recover=True``) — never lost, never half-written.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from polyroute.errors import StoreError
from polyroute.store.base import Store
from polyroute.store.migrations import LATEST_VERSION, migrate, schema_version
from polyroute.store.records import (
    IN_PROGRESS,
    INTERRUPTED,
    Attempt,
    CachedAnswer,
    CalibrationAnswer,
    Candidate,
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
from polyroute.store.writer import Writer

logger = logging.getLogger(__name__)


def utc_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=30)
        else:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store ({exc})") from None
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _create_private(path: Path) -> None:
    """Create the store file readable by its owner only (0600), if it does not exist yet.

    Why: it holds prompts and key digests, and SQLite would create it with the umask's mode
    (usually 0644). SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so
    they follow. An existing file keeps the mode its owner gave it.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store ({exc.strerror})") from None


class SQLiteStore(Store):
    """A store in one SQLite file.

    ``readonly`` opens an existing store for reading only (``polyroute logs`` while a gateway is
    running); ``recover`` marks requests left ``in_progress`` by a crashed gateway as
    ``interrupted`` (only the gateway that owns the file should do this).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, recover: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_lock = threading.Lock()
        self._writer: Writer | None = None
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"{self.path}: no such store (the gateway creates it on its "
                                 f"first start)")
            conn = _connect(self.path, readonly=True)
            version = schema_version(conn)
            conn.close()
            if version != LATEST_VERSION:
                raise StoreError(f"{self.path}: schema version {version}, expected "
                                 f"{LATEST_VERSION}; start the gateway once to upgrade it")
            return
        if not self.path.parent.is_dir():
            raise StoreError(f"{self.path}: the directory {self.path.parent} does not exist")
        _create_private(self.path)
        conn = _connect(self.path)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, str(self.path))
            if recover:
                n = _recover(conn)
                if n:
                    logger.warning("%s: %d request(s) left in progress by a previous run were "
                                   "marked interrupted", self.path, n)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path}: cannot prepare the store ({exc})") from None
        self._writer = Writer(conn)

    # -- writes ----------------------------------------------------------------------------------
    def _w(self) -> Writer:
        if self._writer is None:
            raise StoreError(f"{self.path}: opened read-only")
        return self._writer

    @property
    def failed_writes(self) -> int:
        return self._writer.failed_writes if self._writer else 0

    def start_request(self, start: RequestStart) -> None:
        row = (start.id, start.ts, start.key_id, start.requested_model, start.profile,
               int(start.stream), IN_PROGRESS)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO requests (id, ts, key_id, requested_model, "
                         "profile, stream, status) VALUES (?, ?, ?, ?, ?, ?, ?)", row)

        self._w().submit(job)

    def record_progress(self, request_id: str, attempts: Sequence[Attempt], *,
                        chosen: str | None, cost: float, cost_source: str | None) -> None:
        attempts = tuple(attempts)
        fallbacks = RequestRecord(request_id, 0.0, IN_PROGRESS, 0, attempts=attempts,
                                  chosen=chosen).fallbacks  # the one definition of fallbacks

        def job(conn: sqlite3.Connection) -> None:
            if not conn.execute("UPDATE requests SET chosen = ?, fallbacks = ?, cost = ?, "
                                "cost_source = ? WHERE id = ? AND status = ?",
                                (chosen, fallbacks, float(cost), cost_source, request_id,
                                 IN_PROGRESS)).rowcount:
                return  # finished already (or never started): the record has the last word
            _write_attempts(conn, request_id, attempts)

        self._w().submit(job)

    def finish_request(self, record: RequestRecord) -> None:
        self._w().submit(lambda conn: _write_record(conn, record))

    def add_feedback(self, feedback: FeedbackRecord, *, owner_check: bool = True
                     ) -> Future[FeedbackTarget]:
        def job(conn: sqlite3.Connection) -> FeedbackTarget:
            row = conn.execute("SELECT key_id, prompt, chosen FROM requests WHERE id = ?",
                               (feedback.request_id,)).fetchone()
            if row is None or (owner_check and row[0] != feedback.key_id):
                raise StoreError(f"no request with id {feedback.request_id!r}")
            cur = conn.execute("INSERT INTO feedback (request_id, ts, key_id, score, comment) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (feedback.request_id, feedback.ts, feedback.key_id,
                                float(feedback.score), feedback.comment))
            return FeedbackTarget(int(cur.lastrowid), feedback.request_id, row[1], row[2])

        future = self._w().submit(job, wait=True)
        assert future is not None
        return future

    def record_calibration(self, answer: CalibrationAnswer) -> None:
        a = answer
        row = (a.backend, a.prompt_id, a.prompt, a.task, a.answer, a.quality, float(a.cost),
               a.latency_s, a.prompt_tokens, a.completion_tokens, a.detail, a.error,
               a.ts or time.time())
        self._w().submit(lambda conn: conn.execute(
            f"INSERT OR REPLACE INTO calibration_answers ({_CALIBRATION_COLUMNS}) "
            f"VALUES ({', '.join('?' * 13)})", row))

    def calibration_answers(self, backend: str | None = None) -> list[CalibrationAnswer]:
        where, args = ("WHERE backend = ?", (backend,)) if backend is not None else ("", ())
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_CALIBRATION_COLUMNS} FROM calibration_answers "
                                f"{where} ORDER BY ts, backend, prompt_id", args).fetchall()
        return [CalibrationAnswer(*r[:10], detail=r[10], error=r[11], ts=r[12]) for r in rows]

    def sync_keys(self, keys: Sequence[KeyRecord]) -> None:
        now = time.time()

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE keys SET active = 0")
            conn.executemany(
                "INSERT INTO keys (id, sha256, spend_limit, spend_period, active, updated_ts) "
                "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO UPDATE SET sha256 = excluded.sha256,"
                " spend_limit = excluded.spend_limit, spend_period = excluded.spend_period, "
                "active = 1, updated_ts = excluded.updated_ts",
                [(k.id, k.sha256, k.spend_limit, k.spend_period, now) for k in keys])

        self._w().submit(job)

    # -- the semantic cache's answers ------------------------------------------------------------
    def put_cached_answer(self, entry: CachedAnswer) -> None:
        e = entry
        row = (e.id, e.partition, e.category, e.exact, e.text, e.embedding, e.answer, e.model,
               float(e.cost), e.created_ts, e.expires_ts)
        self._w().submit(lambda conn: conn.execute(
            f"INSERT OR REPLACE INTO cached_answers ({_CACHED_COLUMNS}) "
            f"VALUES ({', '.join('?' * 11)})", row))

    def delete_cached_answers(self, ids: Sequence[int]) -> None:
        rows = [(int(i),) for i in ids]
        if rows:
            self._w().submit(lambda conn: conn.executemany(
                "DELETE FROM cached_answers WHERE id = ?", rows))

    def cached_answers(self, now: float) -> list[CachedAnswer]:
        """Every cached answer not expired at ``now``, oldest first (what the cache reloads);
        expired ones are deleted."""
        self._w().submit(lambda conn: conn.execute(
            "DELETE FROM cached_answers WHERE expires_ts <= ?", (now,)))
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_CACHED_COLUMNS} FROM cached_answers "
                                f"WHERE expires_ts > ? ORDER BY created_ts, id",
                                (now,)).fetchall()
        return [CachedAnswer(*r) for r in rows]

    # -- reads -----------------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A per-thread read connection (WAL readers never block the writer)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=self.readonly)
            self._local.conn = conn
            with self._read_lock:
                self._read_conns.append(conn)
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: read failed ({exc})") from None

    def get_request(self, request_id: str) -> RequestSummary | None:
        with self._read() as conn, _snapshot(conn):
            rows = conn.execute(_SUMMARY_SQL + " WHERE r.id = ?", (request_id,)).fetchall()
            return _with_details(conn, rows)[0] if rows else None

    def requests_between(self, since: float | None = None, until: float | None = None
                         ) -> Iterator[RequestSummary]:
        args = (-math.inf if since is None else since, math.inf if until is None else until)
        last = ("", -math.inf)
        while True:  # keyset pages, each its own snapshot: never the whole log in memory
            with self._read() as conn, _snapshot(conn):
                rows = conn.execute(
                    _SUMMARY_SQL + " WHERE r.ts >= ? AND r.ts < ? AND (r.ts, r.id) > (?, ?)"
                    " ORDER BY r.ts, r.id LIMIT ?",
                    (*args, last[1], last[0], _IDS_PER_QUERY)).fetchall()
                page = _with_details(conn, rows)
            yield from page
            if len(rows) < _IDS_PER_QUERY:
                return
            last = (page[-1].id, page[-1].ts)

    def record_shadow_comparison(self, c: ShadowComparison) -> None:
        row = (c.request_id, c.ts, c.profile, c.served, c.routed, c.verdict, c.served_cost,
               float(c.routed_cost), float(c.judge_cost), c.detail)
        self._w().submit(lambda conn: conn.execute(
            f"INSERT OR REPLACE INTO shadow_comparisons ({_SHADOW_COLUMNS}) "
            f"VALUES ({', '.join('?' * 10)})", row))

    def shadow_comparisons(self, since: float | None = None,
                           until: float | None = None) -> list[ShadowComparison]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SHADOW_COLUMNS} FROM shadow_comparisons WHERE ts >= ? AND ts < ? "
                "ORDER BY ts", (-math.inf if since is None else since,
                                math.inf if until is None else until)).fetchall()
        return [ShadowComparison(*r) for r in rows]

    def recent_requests(self, limit: int = 20) -> list[RequestSummary]:
        with self._read() as conn, _snapshot(conn):
            rows = conn.execute(_SUMMARY_SQL + " ORDER BY r.ts DESC LIMIT ?",
                                (int(limit),)).fetchall()
            return _with_details(conn, rows)

    def spend_by_model(self, since: float | None = None) -> list[ModelSpend]:
        day = utc_day(since) if since is not None else ""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT model, SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), "
                "SUM(cost) FROM spend WHERE day >= ? GROUP BY model ORDER BY SUM(cost) DESC",
                (day,)).fetchall()
        return [ModelSpend(m, int(n), int(p), int(c), float(s)) for m, n, p, c, s in rows]

    def spend_by_key(self, since: float | None = None) -> dict[str, float]:
        day = utc_day(since) if since is not None else ""
        with self._read() as conn:
            rows = conn.execute("SELECT key_id, SUM(cost) FROM spend WHERE day >= ? "
                                "GROUP BY key_id", (day,)).fetchall()
        return {k: float(c) for k, c in rows if k}

    def feedback_examples(self) -> Iterator[FeedbackExample]:
        last = (-math.inf, "")
        while True:  # keyset pages on (ts, id): a retraining read never holds the whole log
            with self._read() as conn:
                rows = conn.execute("""
                    SELECT r.id, r.prompt, r.profile, r.chosen, f.score, r.cost, r.latency_ms,
                           r.ts
                    FROM requests r
                    JOIN feedback f ON f.id = (SELECT MAX(id) FROM feedback
                                               WHERE request_id = r.id)
                    WHERE r.chosen IS NOT NULL AND r.prompt IS NOT NULL AND r.status = 'ok'
                      AND (r.ts, r.id) > (?, ?)
                    ORDER BY r.ts, r.id LIMIT ?
                """, (*last, _FEEDBACK_PER_PAGE)).fetchall()
            yield from (FeedbackExample(i, p, prof, m, float(s), float(c or 0.0),
                                        None if lat is None else lat / 1000.0)
                        for i, p, prof, m, s, c, lat, _ts in rows)
            if len(rows) < _FEEDBACK_PER_PAGE:
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

    # -- lifecycle -------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        if self._writer is not None:
            self._writer.flush(timeout)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            conn = self._writer._conn
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                logger.warning("%s: WAL checkpoint at close failed (%s)", self.path, exc)
            conn.close()
            self._writer = None
        with self._read_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns = []
            self._local = threading.local()


_CACHED_COLUMNS = ("id, partition, category, exact, text, embedding, answer, model, cost, "
                   "created_ts, expires_ts")

_SHADOW_COLUMNS = ("request_id, ts, profile, served, routed, verdict, served_cost, routed_cost, "
                   "judge_cost, detail")

_CALIBRATION_COLUMNS = ("backend, prompt_id, prompt, task, answer, quality, cost, latency_s, "
                        "prompt_tokens, completion_tokens, detail, error, ts")

_SUMMARY_SQL = """
    SELECT r.id, r.ts, r.key_id, r.requested_model, r.profile, r.status, r.http_status, r.chosen,
           r.fallbacks, r.latency_ms, r.prompt_tokens, r.completion_tokens, r.cost,
           (SELECT score FROM feedback f WHERE f.request_id = r.id ORDER BY f.id DESC LIMIT 1),
           r.error, r.stream, r.decision_ms, r.ttfb_ms, r.policy, r.preference, r.prompt,
           r.cost_source, r.finished_ts, r.rule, r.named_route, r.saved, r.guard, r.explain
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
                          explain=None if row[27] is None else json.loads(row[27]))


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction, so a request and its child rows come from the same commit even
    while the gateway writes."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


#: Ids per ``IN (...)`` query: well below SQLite's limit on bound parameters.
_IDS_PER_QUERY = 500
#: Feedback rows per page of :meth:`SQLiteStore.feedback_examples`.
_FEEDBACK_PER_PAGE = 5000


def _with_details(conn: sqlite3.Connection, rows: list[tuple]) -> list[RequestSummary]:
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


def _write_record(conn: sqlite3.Connection, r: RequestRecord) -> None:
    """The whole record of one request; runs inside the writer's transaction."""
    finished = r.finished_ts if r.finished_ts is not None else time.time()
    conn.execute("""
        INSERT INTO requests (id, ts, finished_ts, key_id, requested_model, profile, stream,
            policy, preference, prompt, status, http_status, error, chosen, fallbacks,
            latency_ms, decision_ms, ttfb_ms, prompt_tokens, completion_tokens, cost, cost_source,
            rule, named_route, saved, guard, explain)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET finished_ts = excluded.finished_ts,
            key_id = excluded.key_id, requested_model = excluded.requested_model,
            profile = excluded.profile, stream = excluded.stream, policy = excluded.policy,
            preference = excluded.preference, prompt = excluded.prompt, status = excluded.status,
            http_status = excluded.http_status, error = excluded.error, chosen = excluded.chosen,
            fallbacks = excluded.fallbacks, latency_ms = excluded.latency_ms,
            decision_ms = excluded.decision_ms, ttfb_ms = excluded.ttfb_ms,
            prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
            cost = excluded.cost, cost_source = excluded.cost_source, rule = excluded.rule,
            named_route = excluded.named_route, saved = excluded.saved, guard = excluded.guard,
            explain = excluded.explain
    """, (r.id, r.ts, finished, r.key_id, r.requested_model, r.profile, int(r.stream), r.policy,
          None if r.preference is None else json.dumps(r.preference), r.prompt, r.status,
          r.http_status, r.error, r.chosen, r.fallbacks, r.latency_ms, r.decision_ms, r.ttfb_ms,
          r.prompt_tokens, r.completion_tokens, float(r.cost), r.cost_source, r.rule,
          r.named_route, float(r.saved), None if r.guard is None else json.dumps(r.guard),
          None if not r.explain else json.dumps(r.explain)))
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


def _write_attempts(conn: sqlite3.Connection, request_id: str,
                    attempts: Sequence[Attempt]) -> None:
    conn.execute("DELETE FROM attempts WHERE request_id = ?", (request_id,))
    if attempts:
        conn.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(request_id, i, a.backend, a.outcome, a.http_status, a.error,
                           a.latency_ms) for i, a in enumerate(attempts)])


def _add_spend(conn: sqlite3.Connection, key_id: str | None, model: str, ts: float,
               prompt_tokens: int | None, completion_tokens: int | None, cost: float) -> None:
    conn.execute("""
        INSERT INTO spend VALUES (?, ?, ?, 1, ?, ?, ?)
        ON CONFLICT (key_id, model, day) DO UPDATE SET requests = requests + 1,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            cost = cost + excluded.cost
    """, (key_id or "", model, utc_day(ts), int(prompt_tokens or 0), int(completion_tokens or 0),
          float(cost)))


def _recover(conn: sqlite3.Connection) -> int:
    """Mark the requests a previous run left ``in_progress`` as ``interrupted``, booking as spend
    what their progress rows say was served (one transaction: a crash here changes nothing)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute("SELECT id, ts, key_id, chosen, cost, prompt_tokens, "
                            "completion_tokens FROM requests WHERE status = ?",
                            (IN_PROGRESS,)).fetchall()
        for rid, ts, key_id, chosen, cost, pt, ct in rows:
            attempts = tuple(Attempt(b, o) for b, o in conn.execute(
                "SELECT backend, outcome FROM attempts WHERE request_id = ? ORDER BY n",
                (rid,)))
            charged = _charged_model(RequestRecord(rid, ts, INTERRUPTED, 0, attempts=attempts,
                                                   chosen=chosen, cost=float(cost or 0.0)))
            if charged is not None:
                _add_spend(conn, key_id, charged, ts, pt, ct, float(cost or 0.0))
        conn.execute("UPDATE requests SET status = ?, error = ? WHERE status = ?",
                     (INTERRUPTED, "the gateway stopped before this request finished",
                      IN_PROGRESS))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(rows)

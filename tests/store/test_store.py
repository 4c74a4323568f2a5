"""Every store (SQLite and PostgreSQL, see ``conftest.py``): migrations, one transaction per
request, recovery, feedback, spend, export."""

from __future__ import annotations

import threading
import time

import pytest

from polyroute import load_outcomes
from polyroute.errors import StoreError
from polyroute.store import (
    Attempt,
    Candidate,
    ConversationPin,
    FeedbackRecord,
    KeyRecord,
    RequestRecord,
    RequestStart,
    ShadowComparison,
    StoredResponse,
    export_feedback,
    feedback_outcomes,
)
from polyroute.store.migrations import LATEST_VERSION, MIGRATIONS


def record(rid: str, *, key: str | None = "k1", chosen: str | None = "alpha", cost: float = 0.01,
           status: str = "ok", ts: float | None = None, prompt: str | None = "What is 2+2?",
           attempts: tuple[Attempt, ...] | None = None) -> RequestRecord:
    return RequestRecord(
        id=rid, ts=ts if ts is not None else time.time(), status=status,
        http_status=200 if status == "ok" else 502, key_id=key, requested_model="polyroute-auto",
        profile="polyroute-auto", policy="tradeoff", preference={"lam": 0.0}, prompt=prompt,
        candidates=(Candidate("alpha", 0.9, 0.001), Candidate("beta", 0.5, 0.0005)),
        attempts=attempts if attempts is not None else (
            Attempt("beta", "http_500", 500, "boom", 3.0), Attempt("alpha", "ok", 200, None, 9.0)),
        chosen=chosen, latency_ms=12.5, decision_ms=1.5, prompt_tokens=10,
        completion_tokens=20, cost=cost, cost_source="usage")


def test_a_fresh_store_has_every_table_and_reopening_migrates_nothing(world):
    world.open().close()
    tables = {"requests", "candidates", "attempts", "feedback", "keys", "spend",
              "calibration_answers", "cached_answers"}
    for table in tables:  # each table answers a query: it exists, in this store's schema
        assert world.sql(f"SELECT COUNT(*) FROM {table}") == [(0,)]
    assert len(MIGRATIONS) == LATEST_VERSION
    world.open().close()  # re-opening applies nothing twice


def test_newer_schema_is_refused(world):
    world.open().close()
    world.set_version(LATEST_VERSION + 1)
    with pytest.raises(StoreError, match="newer"):
        world.open()


def test_a_store_of_an_older_schema_is_refused_read_only(world):
    world.open().close()
    world.set_version(LATEST_VERSION - 1)
    with pytest.raises(StoreError, match="start the gateway once"):
        world.open(readonly=True)


def test_a_request_is_written_whole(store):
    store.start_request(RequestStart("r1", time.time(), "k1", "polyroute-auto",
                                     "polyroute-auto", False))
    store.finish_request(record("r1"))
    store.flush()
    r = store.get_request("r1")
    assert r.status == "ok" and r.chosen == "alpha" and r.fallbacks == 1
    assert [c.model for c in r.candidates] == ["alpha", "beta"]
    assert [a.outcome for a in r.attempts] == ["http_500", "ok"]
    assert r.prompt_tokens == 10 and r.cost == 0.01 and r.latency_ms == 12.5
    [spend] = store.spend_by_model()
    assert (spend.model, spend.requests, spend.prompt_tokens, spend.cost) == ("alpha", 1, 10, 0.01)


def test_a_failing_write_leaves_nothing_half_written(store, world):
    store.start_request(RequestStart("r1", time.time(), "k1", "m", "m", False))
    store.flush()
    # Make the attempts insert fail for one backend name, after the request row was updated.
    world.fail_inserts_of_backend("explode")
    store.finish_request(record("r1", attempts=(Attempt("explode", "ok"),)))
    store.flush()
    assert store.failed_writes == 1
    r = store.get_request("r1")
    assert r.status == "in_progress" and r.chosen is None and r.candidates == ()
    assert store.spend_by_model() == []


def test_requests_left_in_progress_are_marked_interrupted_on_recovery(world):
    s = world.open()
    s.start_request(RequestStart("lost", time.time(), "k1", "m", "m", True))
    s.start_request(RequestStart("done", time.time(), "k1", "m", "m", False))
    s.finish_request(record("done"))
    s.close()
    world.open(readonly=True).close()  # readers never touch it
    assert world.sql("SELECT status FROM requests WHERE id = 'lost'") == [("in_progress",)]
    s = world.open(recover=True)
    try:
        assert s.get_request("lost").status == "interrupted"
        assert s.get_request("done").status == "ok"
    finally:
        s.close()


def test_close_flushes_every_queued_write(world):
    s = world.open()
    for i in range(300):
        s.finish_request(record(f"r{i}"))
    s.close()
    with pytest.raises(StoreError, match="closed|read-only"):
        s.finish_request(record("late"))
    reader = world.open(readonly=True)
    assert len(reader.recent_requests(1000)) == 300
    reader.close()


def test_writes_from_many_threads(store):
    def work(t: int) -> None:
        for i in range(50):
            store.finish_request(record(f"t{t}-{i}", cost=0.001))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.flush()
    assert len(store.recent_requests(1000)) == 200
    assert store.spend_by_key() == {"k1": pytest.approx(0.2)}


def test_feedback_is_checked_against_its_request(store):
    store.finish_request(record("r1", key="k1"))
    target = store.add_feedback(FeedbackRecord("r1", 0.5, time.time(), "k1", "ok")).result(10)
    assert target.chosen == "alpha" and target.prompt == "What is 2+2?"
    with pytest.raises(StoreError, match="no request"):
        store.add_feedback(FeedbackRecord("nope", 0.5, time.time(), "k1")).result(10)
    with pytest.raises(StoreError, match="no request"):
        store.add_feedback(FeedbackRecord("r1", 0.5, time.time(), "other")).result(10)
    store.add_feedback(FeedbackRecord("r1", 0.9, time.time(), "k1")).result(10)
    assert store.get_request("r1").feedback == 0.9


def test_spend_by_period(store):
    old = time.time() - 40 * 86400
    store.finish_request(record("old", ts=old, cost=1.0))
    store.finish_request(record("new", cost=0.25, key="k2"))
    store.finish_request(record("failed", chosen=None, status="error", cost=0.0))
    store.flush()
    assert store.spend_by_key() == {"k1": 1.0, "k2": 0.25}
    assert store.spend_by_key(time.time() - 86400) == {"k2": 0.25}
    assert [s.cost for s in store.spend_by_model(time.time() - 86400)] == [0.25]


def test_keys_are_synced(store, world):
    store.sync_keys([KeyRecord("a", "0" * 64, 5.0, "month"), KeyRecord("b", "1" * 64, None,
                                                                          "total")])
    store.sync_keys([KeyRecord("a", "2" * 64, None, "day")])
    store.flush()
    rows = world.sql("SELECT id, sha256, spend_limit, spend_period, active FROM keys "
                     "ORDER BY id")
    assert rows == [("a", "2" * 64, None, "day", 1), ("b", "1" * 64, None, "total", 0)]


def test_export_feedback_round_trips_through_the_loader(store, tmp_path):
    store.finish_request(record("r1", chosen="alpha", prompt="p one"))
    store.finish_request(record("r2", chosen="beta", prompt="p two"))
    store.finish_request(record("r3", chosen="beta", prompt=None))  # prompt not recorded
    store.finish_request(record("r4", chosen="alpha", prompt="p four"))  # no feedback
    for rid, score in (("r1", 0.2), ("r1", 1.0), ("r2", 0.0), ("r3", 1.0)):
        store.add_feedback(FeedbackRecord(rid, score, time.time(), "k1")).result(10)
    result = export_feedback(store, tmp_path / "out.jsonl")
    assert result.rows == 2 and result.models == ("alpha", "beta")
    assert store.count_feedback() == (4, 1)
    outcomes = load_outcomes(tmp_path / "out.jsonl")
    assert outcomes.prompt_ids == ("r1", "r2")
    assert outcomes.prompts == ("p one", "p two")
    q = dict(zip(outcomes.model_names, outcomes.quality[0], strict=True))
    assert q["alpha"] == 1.0  # the latest score
    assert outcomes.cost[1, outcomes.model_names.index("beta")] == 0.01
    assert outcomes.latency is not None


def test_export_without_feedback_says_so(store, tmp_path):
    with pytest.raises(StoreError, match="no logged request has feedback"):
        export_feedback(store, tmp_path / "out.jsonl")


def test_a_killed_request_keeps_the_attempts_and_cost_recorded_while_it_ran(world):
    s = world.open()
    s.start_request(RequestStart("cut", time.time(), "k1", "m", "m", True))
    served = (Attempt("beta", "http_500", 500, "boom", 3.0), Attempt("alpha", "ok", 200))
    s.record_progress("cut", served, chosen="alpha", cost=0.02, cost_source="estimate")
    s.flush()
    assert s.get_request("cut").status == "in_progress"
    world.crash(s)  # the process dies: no finish, no clean close
    s = world.open(recover=True)
    try:
        r = s.get_request("cut")
        assert r.status == "interrupted" and r.chosen == "alpha" and r.cost == 0.02
        assert [a.outcome for a in r.attempts] == ["http_500", "ok"]
        assert s.spend_by_key() == {"k1": 0.02}
        assert [(m.model, m.requests, m.cost) for m in s.spend_by_model()] == [("alpha", 1, 0.02)]
    finally:
        s.close()
    again = world.open(recover=True)  # a second start charges nothing twice
    try:
        assert again.spend_by_key() == {"k1": 0.02}
    finally:
        again.close()


def test_progress_is_replaced_by_the_finished_record(store):
    store.start_request(RequestStart("r1", time.time(), "k1", "m", "m", True))
    store.record_progress("r1", (Attempt("alpha", "ok", 200),), chosen="alpha", cost=0.5,
                          cost_source="estimate")
    store.finish_request(record("r1", cost=0.01))
    store.record_progress("r1", (), chosen=None, cost=9.0, cost_source=None)  # late: ignored
    store.flush()
    r = store.get_request("r1")
    assert r.status == "ok" and r.cost == 0.01
    assert [a.outcome for a in r.attempts] == ["http_500", "ok"]
    assert store.spend_by_key() == {"k1": 0.01}


def test_cached_answers_round_trip_and_expired_ones_are_deleted(store):
    from polyroute.store import CachedAnswer

    def entry(i: int, expires: float) -> CachedAnswer:
        return CachedAnswer(i, "part", "default", f"exact{i}", f"text {i}",
                            bytes(range(8)), b'{"choices": []}', "alpha", 0.25, 1.0, expires)

    store.put_cached_answer(entry(1, 100.0))
    store.put_cached_answer(entry(2, 10.0))
    store.put_cached_answer(entry(3, 100.0))
    store.delete_cached_answers([3])
    store.flush()
    assert store.cached_answers(now=50.0) == [entry(1, 100.0)]
    store.flush()
    assert store.cached_answers(now=5.0) == [entry(1, 100.0)]  # 2 was deleted as expired


def test_dollars_saved_are_recorded(store):
    from dataclasses import replace

    store.finish_request(replace(record("r1", chosen=None, cost=0.0, attempts=()), saved=0.02))
    store.flush()
    assert store.get_request("r1").saved == pytest.approx(0.02)


def test_a_request_is_finished_once_and_its_spend_booked_once(store):
    """A write retried after a lost connection may run twice; the second finish changes
    nothing (the first record stands, spend is not booked again)."""
    store.start_request(RequestStart("r1", time.time(), "k1", "m", "m", False))
    store.finish_request(record("r1", cost=0.25))
    store.finish_request(record("r1", cost=9.0, status="error"))
    store.flush()
    r = store.get_request("r1")
    assert r.status == "ok" and r.cost == 0.25
    assert store.spend_by_key() == {"k1": 0.25}
    assert [(m.model, m.requests) for m in store.spend_by_model()] == [("alpha", 1)]


def test_a_failing_write_among_others_queued_with_it_drops_only_itself(store, world):
    """The PostgreSQL writer commits what waits in one transaction; one job's failure must
    cost only that job (the others are run again on their own)."""
    world.fail_inserts_of_backend("explode")
    gate = threading.Event()
    store._submit(lambda conn: gate.wait(30))  # hold the writer so the next writes queue up
    store.finish_request(record("r1"))
    store.finish_request(record("r2", attempts=(Attempt("explode", "ok"),)))
    store.finish_request(record("r3"))
    gate.set()
    store.flush()
    assert store.failed_writes == 1
    assert store.get_request("r2") is None
    assert sorted(r.id for r in store.recent_requests(10)) == ["r1", "r3"]
    assert store.spend_by_key() == {"k1": pytest.approx(0.02)}


def test_a_migration_written_the_sqlite_way_runs_on_either_database(world):
    """How a new migration is written once: SQLite's types in capitals, ``execute`` and
    ``executemany`` with ``?`` — the PostgreSQL schema translates (REAL stays double, INTEGER
    holds 64 bits)."""
    def _v99_conversation_pins(db) -> None:
        db.execute("CREATE TABLE pins (conversation TEXT PRIMARY KEY, backend TEXT NOT NULL, "
                   "ts REAL NOT NULL, n INTEGER)")
        db.executemany("INSERT INTO pins VALUES (?, ?, ?, ?)",
                       [("c1", "alpha", 0.1 + 0.2, 2**40), ("c2", "beta", 1.5, None)])

    with world.schema() as db:
        _v99_conversation_pins(db)
    assert world.sql("SELECT * FROM pins ORDER BY conversation") == [
        ("c1", "alpha", 0.1 + 0.2, 2**40), ("c2", "beta", 1.5, None)]


def test_responses_round_trip_and_are_readable_at_once(store):
    """A client continues from the answer it was just sent: the read sees the queued write."""
    kept = StoredResponse("resp_1", "k1", 1.0, "polyroute-auto", '[{"type": "message"}]',
                          '{"id": "resp_1"}')
    store.put_response(kept)
    assert store.get_response("resp_1") == kept
    store.put_response(StoredResponse("resp_1", None, 2.0, "m", "[]", "{}"))  # replaced
    assert store.get_response("resp_1").key_id is None
    assert store.get_response("resp_2") is None


def test_requests_are_read_back_by_window_in_pages_oldest_first(store):
    n = 1200  # more than one page
    for i in range(n):
        store.start_request(RequestStart(f"r{i:05d}", 1000.0 + i // 2, "k1", "p", "p", False))
    store.flush()
    got = list(store.requests_between(1000.0, 1000.0 + 550))
    assert [r.id for r in got] == [f"r{i:05d}" for i in range(1100)]
    assert [r.id for r in store.requests_between(1000.0 + 599)] == ["r01198", "r01199"]
    assert list(store.requests_between(None, 1000.0)) == []


def test_explanations_conversations_and_shadow_comparisons_round_trip(store):
    store.start_request(RequestStart("r1", 10.0, "k1", "p", "p", False))
    store.finish_request(RequestRecord(
        id="r1", ts=10.0, status="ok", http_status=200, key_id="k1", chosen="alpha",
        explain={"shadow": {"served": "alpha", "routed": "beta"}}, conversation_id="c1",
        pinned=True, conversation={"turn": "user"}))
    store.record_shadow_comparison(ShadowComparison("r1", 11.0, "p", "alpha", "beta", "tie",
                                                    0.01, 0.002, 0.001, None))
    store.record_shadow_comparison(ShadowComparison("r1", 12.0, "p", "alpha", "beta",
                                                    "routed", 0.01, 0.002, 0.001, None))
    store.flush()
    r = store.get_request("r1")
    assert r.explain == {"shadow": {"served": "alpha", "routed": "beta"}}
    assert (r.conversation_id, r.pinned, r.conversation) == ("c1", True, {"turn": "user"})
    (c,) = store.shadow_comparisons(since=0.0)  # one per request: the later one replaced it
    assert c.verdict == "routed" and store.shadow_comparisons(since=20.0) == []


def test_conversation_pins_round_trip_and_expire(store):
    pin = ConversationPin("key1", "c1", "alpha", "k1", "p", 2, 1500, ("beta",), 0.01,
                          1.0, 2.0, 100.0)
    store.put_pin(pin)
    store.flush()
    assert store.get_pin("key1", now=50.0) == pin
    assert store.get_pin("key1", now=150.0) is None
    store.expire_pins(now=150.0)
    store.flush()
    assert store.get_pin("key1", now=50.0) is None


def test_feedback_is_read_in_pages_oldest_first(store, monkeypatch):
    import polyroute.store.sql as sql

    monkeypatch.setattr(sql, "FEEDBACK_PER_PAGE", 3)
    now = time.time()
    for i in range(8):  # several pages, two requests on one timestamp
        store.finish_request(record(f"r{i}", ts=now + (i // 2), prompt=f"p{i}"))
        store.add_feedback(FeedbackRecord(f"r{i}", i / 10, now, "k1")).result(10)
    examples = list(store.feedback_examples())
    assert [e.request_id for e in examples] == [f"r{i}" for i in range(8)]
    assert [e.score for e in examples] == [i / 10 for i in range(8)]
    outcomes = feedback_outcomes(store, batch_rows=2)  # streamed as several Arrow batches
    assert outcomes.prompt_ids == tuple(f"r{i}" for i in range(8))

"""``polyroute logs``: the listing carries each request's decision, and ``--id`` shows one whole."""

from __future__ import annotations

import json

import pytest

from polyroute.cli import main
from polyroute.store import (
    Attempt,
    Candidate,
    FeedbackRecord,
    RequestRecord,
    RequestStart,
    SQLiteStore,
)

RID = "req-0123456789abcdef0123456789abcdef"


@pytest.fixture
def store_path(tmp_path):
    """A store holding one routed request (two candidates, a fallback, two feedback scores) and
    one older request that failed without a decision."""
    path = tmp_path / "state.sqlite"
    store = SQLiteStore(path)
    store.start_request(RequestStart(RID, 1_700_000_000.0, "team-a", "polyroute-auto",
                                     "polyroute-auto", False))
    store.finish_request(RequestRecord(
        id=RID, ts=1_700_000_000.0, status="ok", http_status=200, key_id="team-a",
        requested_model="polyroute-auto", profile="polyroute-auto", policy="tradeoff",
        preference={"lam": 0.25}, prompt="Prove that sqrt(2) is irrational.",
        candidates=(Candidate("big-model", 0.91, 0.0021), Candidate("small-model", 0.62, 0.0003)),
        attempts=(Attempt("big-model", "http_503", 503, "overloaded", 4.0),
                  Attempt("small-model", "ok", 200, None, 180.0)),
        chosen="small-model", latency_ms=190.0, decision_ms=2.5, ttfb_ms=95.0,
        prompt_tokens=12, completion_tokens=80, cost=0.00031, cost_source="usage",
        finished_ts=1_700_000_000.2))
    store.finish_request(RequestRecord(id="req-old", ts=1_600_000_000.0, status="error",
                                       http_status=502, error="no backend answered"))
    store.flush()
    store.add_feedback(FeedbackRecord(RID, 0.4, 1_700_000_100.0, "team-a", "too terse")).result()
    store.add_feedback(FeedbackRecord(RID, 0.9, 1_700_000_200.0, "team-a", None)).result()
    store.close()
    return path


def test_json_listing_carries_candidates_attempts_and_feedback(store_path, capsys):
    assert main(["logs", "--store", str(store_path), "--json"]) == 0
    requests = json.loads(capsys.readouterr().out)["requests"]
    assert [r["id"] for r in requests] == [RID, "req-old"]
    routed, failed = requests
    assert [c["model"] for c in routed["candidates"]] == ["big-model", "small-model"]
    assert routed["candidates"][0]["estimated_quality"] == 0.91
    assert [(a["backend"], a["outcome"]) for a in routed["attempts"]] == [
        ("big-model", "http_503"), ("small-model", "ok")]
    assert [f["score"] for f in routed["feedbacks"]] == [0.4, 0.9]
    assert routed["feedback"] == 0.9  # the latest score, as before
    assert failed["candidates"] == [] and failed["attempts"] == [] and failed["feedbacks"] == []


def test_id_json_prints_the_whole_record(store_path, capsys):
    assert main(["logs", "--store", str(store_path), "--id", RID, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["id"] == RID and rec["prompt"] == "Prove that sqrt(2) is irrational."
    assert rec["policy"] == "tradeoff" and rec["preference"] == {"lam": 0.25}
    assert rec["chosen"] == "small-model" and rec["fallbacks"] == 1
    assert rec["cost"] == 0.00031 and rec["cost_source"] == "usage"
    assert rec["finished_ts"] == 1_700_000_000.2 and rec["ttfb_ms"] == 95.0
    assert [c["estimated_cost"] for c in rec["candidates"]] == [0.0021, 0.0003]
    assert rec["attempts"][0]["error"] == "overloaded"
    assert [(f["score"], f["comment"]) for f in rec["feedbacks"]] == [(0.4, "too terse"),
                                                                      (0.9, None)]


def test_id_shows_every_section_readably(store_path, capsys):
    assert main(["logs", "--store", str(store_path), "--id", RID]) == 0
    text = capsys.readouterr().out
    for needle in ("Decision", "Estimates", "Attempts", "Cost", "Feedback", "Prompt",
                   RID, "tradeoff", '"lam": 0.25', "big-model", "small-model", "0.910",
                   "http_503", "overloaded", "0.000310", "usage", "too terse",
                   "Prove that sqrt(2) is irrational."):
        assert needle in text, needle


def test_unknown_id_is_a_one_line_error(store_path, capsys):
    assert main(["logs", "--store", str(store_path), "--id", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"polyroute: error: {store_path}: no request with id 'nope'"]

"""Every decision explained: compact headers on the response, the whole story in the record and
in ``polyroute logs --id``."""

from __future__ import annotations

from gateway_world import MATH_PROMPT

from polyroute.cli import main
from polyroute.gateway.explain import in_words, policy_summary
from polyroute.store import Attempt, Candidate, RequestSummary


def test_a_fallback_answer_says_policy_candidates_and_tries(gateway, standins, capsys):
    standins["alpha"].next("500")
    r = gateway.chat(MATH_PROMPT, model="polyroute-auto")
    assert r.status_code == 200
    assert r.headers["x-polyroute-policy"] == "tradeoff lam=0"
    first = r.headers["x-polyroute-candidates"].split(", ")[0]
    assert first.startswith("alpha q=")
    assert r.headers["x-polyroute-tried"] == f"alpha=http_500, {r.headers['x-polyroute-model']}=ok"
    gateway.flush()
    rid = r.headers["x-polyroute-request-id"]
    assert main(["logs", "--store", str(gateway.config.store.path), "--id", rid]) == 0
    text = capsys.readouterr().out
    assert "Why this model" in text
    assert "Tried alpha: answered HTTP 500" in text
    assert f"Answered by {r.headers['x-polyroute-model']}" in text and "(1 fallback)" in text


def test_a_backend_named_directly_has_no_decision_headers(gateway):
    r = gateway.chat(MATH_PROMPT, model="beta")
    assert "x-polyroute-policy" not in r.headers and "x-polyroute-candidates" not in r.headers
    assert "x-polyroute-tried" not in r.headers


def test_borrowed_effort_and_shadow_are_told_in_words():
    r = RequestSummary(
        "r1", 0.0, "k", "auto", "auto", "ok", 200, "big", 0, 120.0, 10, 20, 0.001,
        policy="tradeoff", preference={"lam": 0.5, "budget": None, "floor": None},
        candidates=(Candidate("big", 0.8, 0.001), Candidate("o3@high", 0.9, 0.02, "o3")),
        attempts=(Attempt("big", "ok", 200, None, 110.0),),
        explain={"estimates": {"o3@high": "estimated as o3 +0.05 (no high-effort outcome "
                                          "data)"},
                 "shadow": {"served": "big", "routed": "o3@high", "sampled": True},
                 "effort": "the client asked for 'high' effort: only those candidates"})
    words = "\n".join(in_words(r))
    assert "policy tradeoff lam=0.5" in words
    assert "o3@high has no outcome data of its own: estimated as o3 +0.05" in words
    assert "Shadow mode: big served the request; the router would have chosen o3@high" in words
    assert "Reasoning effort: the client asked for 'high' effort" in words
    assert "Tried big: answered after 110 ms." in words


def test_the_policy_summary_names_the_knob_that_was_set():
    assert policy_summary("tradeoff", {"lam": 0.5, "budget": None}) == "tradeoff lam=0.5"
    assert policy_summary("budget", {"lam": 0.0, "budget": 0.002}) == "budget budget=0.002"
    assert policy_summary(None, None) is None

"""The dashboard's numbers from a window of records whose answers are known by construction."""

from __future__ import annotations

import pytest

from polyroute.evaluation.traffic import Prices
from polyroute.gateway.stats import window_stats
from polyroute.store import Attempt, Candidate, RequestSummary

PRICES = {"a": Prices(1.0, 1.0), "b": Prices(10.0, 10.0)}
EST = (Candidate("a", 0.6, None), Candidate("b", 0.8, None))


def _r(i, ts, chosen, *, latency=10.0, status="ok", saved=0.0, guard=None, attempts=()):
    fallbacks = sum(1 for a in attempts if a.outcome != "ok")
    return RequestSummary(f"r{i}", ts, "k", "auto", "auto", status, 200, chosen,
                          fallbacks, latency, 100, 100,
                          PRICES[chosen].cost(100, 100) if chosen else 0,
                          candidates=EST, saved=saved, guard=guard, attempts=attempts)


def test_window_stats_count_share_latency_cache_and_guards():
    rows = [_r(0, 0.5, "a", latency=10), _r(1, 1.5, "a", latency=20),
            _r(2, 2.5, "b", latency=30, attempts=(Attempt("a", "http_500"),
                                                   Attempt("b", "ok"))),
            _r(3, 3.5, "a", saved=0.002), _r(4, 3.6, "a", guard={"action": "redact"}),
            _r(5, 9.0, "b")]  # outside the window
    s = window_stats(rows, since=0.0, until=4.0, buckets=4, prices=PRICES)
    assert s["requests"] == 5
    assert s["share_by_model"] == {"a": 0.8, "b": 0.2}
    assert s["traffic"]["models"] == ["a", "b"]
    assert s["traffic"]["counts"] == [[1, 0], [1, 0], [0, 1], [2, 0]]
    assert s["latency_ms"]["p50"] == pytest.approx(10.0)  # 10, 20, 30, 10, 10
    assert s["latency_ms_by_model"]["b"]["n"] == 1
    assert s["fallbacks"] == 1
    assert s["cache"] == {"hits": 1, "saved": 0.002, "hit_rate": 0.2}
    assert s["guards"] == {"redact": 1}
    assert s["spend"] == pytest.approx(4 * 0.0002 + 0.002)
    pos = s["router"]
    assert pos["best"] == "b"  # highest mean estimated quality
    assert pos["savings_vs_best"] == pytest.approx(1 - (4 * 0.0002 + 0.002) / (5 * 0.002))


def test_an_empty_window_has_no_router_position():
    s = window_stats([], since=0.0, until=60.0, buckets=3, prices=PRICES)
    assert s["requests"] == 0 and s["router"] is None and s["latency_ms"]["p50"] is None

"""The savings report on logged traffic whose right answers are known by construction."""

from __future__ import annotations

import random

import pytest

from polyroute.errors import ConfigError
from polyroute.evaluation.traffic import Prices, savings_report
from polyroute.store import Candidate, RequestSummary, ShadowComparison

PRICES = {"cheap": Prices(0.1, 0.1), "mid": Prices(1.0, 1.0), "big": Prices(10.0, 10.0)}
EST = (Candidate("cheap", 0.6, None), Candidate("mid", 0.7, None), Candidate("big", 0.9, None))


def _request(i: int, chosen: str, *, shadow: dict | None = None, feedback: float | None = None,
             tokens: tuple[int | None, int | None] = (1000, 1000)) -> RequestSummary:
    cost = PRICES[chosen].cost(*tokens) if None not in tokens else 0.0
    return RequestSummary(f"r{i}", 1000.0 + i, "k", "polyroute-auto", "polyroute-auto", "ok",
                          200, chosen, 0, 10.0, tokens[0], tokens[1], cost, feedback=feedback,
                          candidates=EST, explain={"shadow": shadow} if shadow else None)


def test_routing_every_request_to_the_cheap_model_saves_what_the_prices_say():
    requests = [_request(i, "cheap") for i in range(20)]
    r = savings_report(requests, [], PRICES, default="mid")
    assert r.best == "big"  # the highest mean estimated quality
    assert r.requests == 20 and r.unpriced == 0
    assert r.cost_per_request["routed"].value == pytest.approx(0.0002)
    assert r.cost_per_request["always-default"].value == pytest.approx(0.002)
    assert r.savings_vs_default.value == pytest.approx(0.9)
    assert r.savings_vs_best.value == pytest.approx(0.99)
    assert r.estimated_quality["routed"].value == pytest.approx(0.6)
    assert r.estimated_quality["always-best"].value == pytest.approx(0.9)
    assert r.share == {"cheap": 1.0}


def test_shadow_mode_prices_the_routed_choice_and_reads_the_judge():
    shadow = {"served": "mid", "routed": "cheap"}
    requests = [_request(i, "mid", shadow=shadow) for i in range(10)]
    verdicts = ["routed"] * 3 + ["tie"] * 2 + ["served"] * 4 + [None]
    comparisons = [ShadowComparison(f"r{i}", 2000.0, "polyroute-auto", "mid", "cheap", v,
                                    0.002, 0.0003, 0.001) for i, v in enumerate(verdicts)]
    random.Random(0).shuffle(comparisons)  # joined by request id, not by position
    r = savings_report(requests, comparisons, PRICES)
    assert r.default == "mid"  # shadow mode's served model
    assert r.shadow_requests == 10
    # Judged requests carry the routed call's real cost (0.0003); the unjudged one is re-priced.
    assert r.total_cost["routed"] == pytest.approx(9 * 0.0003 + 0.0002)
    assert r.total_cost["always-default"] == pytest.approx(10 * 0.002)
    assert r.verdicts == {"routed": 3, "tie": 2, "same": 0, "served": 4, "none": 1}
    assert r.routed_win_rate.value == pytest.approx((3 + 1) / 9)
    assert r.routed_win_rate.low < r.routed_win_rate.value < r.routed_win_rate.high
    assert r.shadow_cost == pytest.approx(10 * 0.0013)


def test_feedback_is_grouped_by_the_model_that_served():
    requests = [_request(0, "cheap", feedback=1.0), _request(1, "cheap", feedback=0.0),
                _request(2, "big", feedback=1.0), _request(3, "big")]
    r = savings_report(requests, [], PRICES, default="mid")
    assert r.feedback["cheap"][0].value == pytest.approx(0.5) and r.feedback["cheap"][1] == 2
    assert r.feedback["big"][1] == 1


def test_requests_without_tokens_use_the_decision_estimate_or_are_counted_out():
    with_estimate = RequestSummary("a", 1.0, "k", "p", "p", "ok", 200, "cheap", 0, 1.0, None,
                                   None, 0.001, candidates=(Candidate("cheap", 0.5, 0.001),
                                                            Candidate("mid", 0.6, 0.004)))
    without = RequestSummary("b", 2.0, "k", "p", "p", "ok", 200, "cheap", 0, 1.0, None, None,
                             0.001, candidates=(Candidate("cheap", 0.5, None),
                                                Candidate("mid", 0.6, None)))
    r = savings_report([with_estimate, without], [], PRICES, default="mid", best="mid")
    assert r.requests == 1 and r.unpriced == 1
    assert r.total_cost["always-default"] == pytest.approx(0.004)


def test_unusable_windows_and_unknown_models_are_clear_errors():
    with pytest.raises(ConfigError, match="no routed requests"):
        savings_report([], [], PRICES, default="mid")
    with pytest.raises(ConfigError, match="--default MODEL"):
        savings_report([_request(0, "cheap")], [], PRICES)
    with pytest.raises(ConfigError, match="'gpt-x' is not a backend"):
        savings_report([_request(0, "cheap")], [], PRICES, default="gpt-x")

"""CPT levels that every router reaches with the cheapest model alone are said so in the table;
CPT90 and CPT100 (cost to match the best single model) are the levels that separate routers."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from polyroute.evaluation import cross_validate, evaluate_split
from polyroute.evaluation.report import leaderboard

ROUTERS = ["best-single", "random", "knn"]


@pytest.fixture
def result(two_cluster_split):
    train, test = two_cluster_split
    return evaluate_split(train.outcomes, test.outcomes, ROUTERS, "tfidf",
                          features=(train.features, test.features))


def render(renderable) -> str:
    buffer = io.StringIO()
    Console(width=200, file=buffer, color_system=None).print(renderable)
    return buffer.getvalue()


def header(text: str) -> str:
    return next(line for line in text.splitlines() if "router" in line and "AIQ" in line)


def test_reference_names_the_cheapest_single_model(result, two_cluster_split) -> None:
    # The two-cluster world: A (priciest) 0.55, B 0.5, C (cheapest) 0.4.
    ref = result["reference"]
    assert ref["cheapest_single_model"] == "C"
    assert ref["cheapest_single_quality"] == pytest.approx(0.4)
    for key in ("c_min", "c_max", "best_single_quality", "best_single_cost", "best_single_model"):
        assert key in ref  # the older keys stay


def test_cpt90_and_cpt100_are_added_beside_the_old_levels(result, two_cluster_split) -> None:
    cost = two_cluster_split[1].outcomes.cost.mean(axis=0)
    zero = result["zero_router"]
    assert {"cpt50", "cpt80", "cpt95", "cpt90", "cpt100"} <= set(zero)
    assert zero["cpt100"] == pytest.approx(1.0)  # matching A takes A
    assert zero["cpt50"] == pytest.approx(cost[2] / cost[0])  # C alone has 0.4 >= 0.275
    assert result["oracle"]["cpt100"] < 1.0
    assert result["routers"]["best-single"]["cpt100"] == pytest.approx(1.0)  # A, at A's cost


def test_levels_reached_by_the_cheapest_model_alone_are_marked(result) -> None:
    text = render(leaderboard(result))
    cols = header(text)
    # C has 0.4 / 0.55 = 73 % of A's quality: CPT50 is C's cost for everyone, CPT80 is not.
    assert "CPT50*" in cols and "CPT80*" not in cols and "CPT80" in cols
    assert "CPT90" in cols and "CPT100" in cols
    assert "* reached by the cheapest single model alone (C, 73 % of the best single" in text


def test_marking_works_on_cross_validated_results(two_cluster) -> None:
    cv = cross_validate(two_cluster.outcomes, ["knn"], "tfidf", n_splits=3)
    cols = header(render(leaderboard(cv)))
    assert "CPT50*" in cols and "CPT80*" not in cols


def test_cross_validation_keeps_every_cpt_level():
    """--cv and --leave-task-out combine splits through one key list: it must hold every CPT
    level the metrics compute (it kept only cpt50/80/95, so cpt90 and cpt100 were dropped)."""
    from polyroute.evaluation.metrics import CPT_LEVELS, cpt_key
    from polyroute.evaluation.runner import _SUMMARY_KEYS

    assert all(cpt_key(level) in _SUMMARY_KEYS for level in CPT_LEVELS)

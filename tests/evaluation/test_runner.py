"""The evaluation runner on the two-cluster world, where every reference number is known."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.errors import RouterError
from polyroute.evaluation import (
    cross_validate,
    evaluate_split,
    leave_task_out_evaluation,
    score_estimates,
)
from polyroute.evaluation.hull import AIQ_BUDGETS
from polyroute.routers import Estimates

ROUTERS = ["best-single", "cheapest", "random", "knn", "linear"]


@pytest.fixture
def result(two_cluster_split):
    train, test = two_cluster_split
    return evaluate_split(train.outcomes, test.outcomes, ROUTERS, "tfidf",
                          features=(train.features, test.features))


def test_result_shape(result) -> None:
    assert set(result) >= {"reference", "zero_router", "oracle", "routers", "n_train", "n_test"}
    assert (result["n_train"], result["n_test"]) == (60, 20)
    assert list(result["routers"]) == ROUTERS
    for r in [result["zero_router"], result["oracle"], *result["routers"].values()]:
        assert {"aiq", "best_quality", "best_quality_cost", "cpt50", "cpt80", "cpt95",
                "points", "hull", "oracle_gain_share"} <= set(r)
    for r in result["routers"].values():
        assert r["fit_seconds"] >= 0 and r["estimate_ms_per_prompt"] >= 0


def test_oracle_is_at_least_every_router(result) -> None:
    oracle = result["oracle"]["aiq"]
    assert oracle >= result["zero_router"]["aiq"]
    for name, r in result["routers"].items():
        assert r["aiq"] <= oracle + 1e-12, name
    assert result["oracle"]["best_quality"] == pytest.approx(1.0)


def test_zero_router_is_the_hull_of_the_single_models_by_hand(result, two_cluster_split) -> None:
    test = two_cluster_split[1].outcomes
    cost = test.cost.mean(axis=0)  # each model costs the same on every prompt here
    quality = np.array([0.55, 0.5, 0.4])  # 10 math + 10 poetry prompts
    singles = result["zero_router"]["single_models"]
    for j, name in enumerate("ABC"):
        assert singles[name] == pytest.approx({"cost": cost[j], "quality": quality[j]})
    # By hand: C (cheap, .4) → B (.5) → A (.55) are all vertices (B lies above the C–A chord).
    assert 0.5 > 0.4 + (0.55 - 0.4) * (cost[1] - cost[2]) / (cost[0] - cost[2])
    budgets = np.linspace(cost[2], cost[0], AIQ_BUDGETS)
    by_hand = np.interp(budgets, cost[::-1], quality[::-1]).mean()
    assert result["zero_router"]["aiq"] == pytest.approx(by_hand, rel=1e-12)
    ref = result["reference"]
    assert ref["best_single_model"] == "A"
    assert ref["best_single_quality"] == pytest.approx(0.55)
    assert (ref["c_min"], ref["c_max"]) == pytest.approx((cost[2], cost[0]))
    # CPT95: A's 95 % of 0.55 is reached on the B–A segment.
    target = 0.95 * 0.55
    reach = cost[1] + (target - 0.5) * (cost[0] - cost[1]) / (0.55 - 0.5)
    assert result["zero_router"]["cpt95"] == pytest.approx(reach / cost[0])


def test_gain_shares(result) -> None:
    assert result["oracle"]["oracle_gain_share"] == pytest.approx(1.0)
    assert result["zero_router"]["oracle_gain_share"] == pytest.approx(0.0)
    routers = result["routers"]
    # Constant estimates walk through the single models: exactly the zero router.
    assert routers["best-single"]["aiq"] == pytest.approx(result["zero_router"]["aiq"])
    assert routers["best-single"]["oracle_gain_share"] == pytest.approx(0.0, abs=1e-9)
    # A router that learned the clusters captures most of the oracle's gain.
    assert routers["knn"]["oracle_gain_share"] > 0.8
    assert routers["knn"]["best_quality"] == pytest.approx(1.0)
    assert routers["linear"]["oracle_gain_share"] > 0.5
    assert routers["random"]["aiq"] < routers["knn"]["aiq"]
    # Always-cheapest has one point: C's.
    assert routers["cheapest"]["best_quality"] == pytest.approx(0.4)


def test_per_task_table(result) -> None:
    per_task = result["per_task"]
    assert set(per_task) == {"math", "poetry"}
    for row in per_task.values():
        assert row["n"] == 10
        assert set(row) >= {"zero_router", "oracle", *ROUTERS}
        assert row["knn"] <= row["oracle"] + 1e-12


def test_perfect_estimates_score_like_the_oracle(two_cluster_split) -> None:
    test = two_cluster_split[1].outcomes
    perfect = Estimates(test.model_names, test.quality.copy(), test.cost.copy(), cost_scale=1e-3)
    scored = score_estimates({"perfect": perfect}, test)
    assert scored["routers"]["perfect"]["aiq"] == pytest.approx(scored["oracle"]["aiq"])
    assert scored["routers"]["perfect"]["oracle_gain_share"] == pytest.approx(1.0)


def test_tfidf_features_are_fitted_on_the_training_part(two_cluster_split) -> None:
    train, test = two_cluster_split
    result = evaluate_split(train.outcomes, test.outcomes, ["knn"], "tfidf", per_task=False)
    assert "per_task" not in result
    assert result["routers"]["knn"]["oracle_gain_share"] > 0.8


def test_unknown_router_fails_before_any_work(two_cluster_split) -> None:
    train, test = two_cluster_split
    with pytest.raises(RouterError, match="unknown router 'nope'.*knn"):
        evaluate_split(train.outcomes, test.outcomes, ["knn", "nope"], "no-such-featurizer")


def test_cross_validate_reports_every_fold(two_cluster_factory) -> None:
    world = two_cluster_factory(15)
    steps: list[str] = []
    result = cross_validate(world.outcomes, ["best-single", "knn"], "tfidf", n_splits=3,
                            step=steps.append)
    assert result["splits"] == ["fold1", "fold2", "fold3"]
    for r in [result["zero_router"], result["oracle"], *result["routers"].values()]:
        assert set(r["per_split"]) == {"fold1", "fold2", "fold3"}
        assert r["aiq"] == pytest.approx(np.mean(list(r["per_split"].values())))
        assert r["aiq_std"] >= 0
    knn = result["routers"]["knn"]
    assert knn["aiq"] > result["zero_router"]["aiq"]
    assert len(knn["points"]) == len(result["oracle"]["points"])
    assert any("fold 3/3" in s for s in steps)


# TF-IDF fitted on one task's near-identical prompts leaves SVD components without variance.
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_leave_task_out_reports_every_task(two_cluster_factory) -> None:
    world = two_cluster_factory(10)
    result = leave_task_out_evaluation(world.outcomes, ["best-single", "knn"], "tfidf")
    assert result["splits"] == ["math", "poetry"]
    for r in result["routers"].values():
        assert set(r["per_split"]) == {"math", "poetry"}
    # On math alone, A (quality 1) is the best single model and the oracle can do no better:
    # both hulls run straight from C (0.4, cheapest) to A (1.0, dearest), so AIQ = 0.7, and the
    # gain share is undefined (no gain to share).
    assert result["oracle"]["per_split"]["math"] == pytest.approx(0.7)
    assert result["zero_router"]["per_split"]["math"] == pytest.approx(0.7)
    # Pooled over both held-out tasks, no single model is good everywhere, so the oracle's gain
    # over the zero router is real and the headline AIQs are the pooled ones.
    assert result["oracle"]["aiq"] > result["zero_router"]["aiq"]
    assert result["oracle"]["oracle_gain_share"] == pytest.approx(1.0)
    assert result["zero_router"]["oracle_gain_share"] == pytest.approx(0.0)
    assert set(result["per_task"]) == {"math", "poetry"}

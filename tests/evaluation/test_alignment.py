"""Two tables meet by model *name*, never by column position.

The same outcomes written with the models in another order, the rows in another order, or in
another file format (wide JSONL, long CSV, long Parquet) must give the same metrics; a model that
only one side holds is left out with a warning naming it; no shared model at all is a DataError.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polyroute.data import Outcomes, load_outcomes, save_outcomes
from polyroute.data.outcomes import ModelInfo, ModelMismatchWarning, align_models, shared_models
from polyroute.errors import DataError
from polyroute.evaluation import evaluate_split, score_estimates
from polyroute.evaluation.hull import hull_quality_at
from polyroute.routers import Estimates

ROUTERS = ["best-single", "cheapest", "knn", "linear"]
#: A fixed k: kNN's own choice of k by cross-validation depends on the row order of its folds.
PARAMS = {"knn": {"k": 5}}
TIMINGS = {"fit_seconds", "estimate_ms_per_prompt"}
FORMATS = ("wide.jsonl", "long.csv", "long.parquet", "long.jsonl.gz")


def write_wide_jsonl(outcomes: Outcomes, path: Path) -> Path:
    """The llmrouter-bench shape: one prompt per line with ``scores`` and ``costs`` objects."""
    with open(path, "w", encoding="utf-8") as fh:
        for i, pid in enumerate(outcomes.prompt_ids):
            known = [j for j in range(len(outcomes.models)) if not np.isnan(outcomes.quality[i, j])]
            fh.write(json.dumps({
                "prompt_id": pid, "prompt": outcomes.prompts[i], "task": outcomes.tasks[i],
                "scores": {outcomes.model_names[j]: float(outcomes.quality[i, j]) for j in known},
                "costs": {outcomes.model_names[j]: float(outcomes.cost[i, j]) for j in known},
            }) + "\n")
    return path


def write(outcomes: Outcomes, path: Path) -> Path:
    return write_wide_jsonl(outcomes, path) if "wide" in path.name else save_outcomes(outcomes,
                                                                                       path)


def features_for(outcomes: Outcomes, table: dict[str, np.ndarray]) -> np.ndarray:
    """Precomputed embeddings looked up by prompt id (so rows may come in any order)."""
    return np.stack([table[pid] for pid in outcomes.prompt_ids])


def evaluate(train: Outcomes, test: Outcomes, feats: dict[str, np.ndarray]) -> dict[str, Any]:
    return evaluate_split(train, test, ROUTERS, "tfidf", router_params=PARAMS,
                          features=(features_for(train, feats), features_for(test, feats)))


def assert_same_metrics(a: Any, b: Any, where: str = "result") -> None:
    """Every number equal (up to the order of float sums), every key present in both."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            if key in TIMINGS:
                continue
            if key == "hull":
                assert_same_curve(a[key], b[key], f"{where}.{key}")
            elif where.endswith("zero_router") and key == "points":
                # one point per single model, in the table's column order: compare as a set
                assert_same_metrics(sorted(a[key]), sorted(b[key]), f"{where}.{key}")
            else:
                assert_same_metrics(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_metrics(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert isinstance(b, float), where
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), \
            f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_curve(a: list, b: list, where: str) -> None:
    """Two hulls are the same curve: a vertex that float noise makes (barely) collinear may
    be kept in one and dropped in the other, so compare the hull's quality at every vertex."""
    ha, hb = np.asarray(a, dtype=float).reshape(-1, 2), np.asarray(b, dtype=float).reshape(-1, 2)
    costs = np.union1d(ha[:, 0], hb[:, 0])
    np.testing.assert_allclose(hull_quality_at(ha, costs), hull_quality_at(hb, costs),
                               rtol=1e-9, atol=1e-12, err_msg=where)


@pytest.fixture
def world(two_cluster_factory):
    """Train (with some unknown cells) and test tables, and every prompt's embedding by id."""
    train = two_cluster_factory(30, seed=0, prefix="tr", missing=0.1)
    test = two_cluster_factory(10, seed=1, prefix="te")
    feats = {pid: f for w in (train, test)
             for pid, f in zip(w.outcomes.prompt_ids, w.features, strict=True)}
    return train.outcomes, test.outcomes, feats


@pytest.fixture
def reference(world, tmp_path: Path, models_file: Path) -> dict[str, Any]:
    """Metrics from both tables saved as long JSONL in their own order and read back (with
    the ``models.json`` beside them: list prices decide the ``cheapest`` router)."""
    train, test, feats = world
    return evaluate(load_outcomes(save_outcomes(train, tmp_path / "ref-train.jsonl")),
                    load_outcomes(save_outcomes(test, tmp_path / "ref-test.jsonl")), feats)


def shuffled(outcomes: Outcomes, rng: np.random.Generator) -> Outcomes:
    models = [outcomes.model_names[j] for j in rng.permutation(len(outcomes.models))]
    return outcomes.select_models(models).subset(rng.permutation(outcomes.n_prompts))


# -- the property ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("train_format", FORMATS)
@pytest.mark.parametrize("test_format", FORMATS)
def test_model_order_row_order_and_format_never_change_a_metric(
        world, reference, tmp_path: Path, models_file: Path, seed: int, train_format: str,
        test_format: str) -> None:
    train, test, feats = world
    rng = np.random.default_rng(seed)
    paths = (write(shuffled(train, rng), tmp_path / f"train.{train_format}"),
             write(shuffled(test, rng), tmp_path / f"test.{test_format}"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelMismatchWarning)  # same models: nothing to warn of
        result = evaluate(load_outcomes(paths[0]), load_outcomes(paths[1]), feats)
    assert_same_metrics(reference, result)


def test_test_models_in_another_order_score_the_same(world, reference) -> None:
    """The outside probe's case: a router's AIQ fell from 0.691 to 0.235 this way."""
    train, test, feats = world
    base = evaluate(train, test, feats)
    reordered = evaluate(train, test.select_models(["C", "A", "B"]), feats)
    assert_same_metrics(base, reordered)
    assert reordered["routers"]["knn"]["aiq"] > base["zero_router"]["aiq"]


# -- models only one side holds ------------------------------------------------------------------
def test_a_model_missing_from_the_test_file_is_left_out_with_a_warning(world) -> None:
    train, test, feats = world
    with pytest.warns(ModelMismatchWarning, match=r"training only: B\b"):
        result = evaluate(train, test.select_models(["C", "A"]), feats)
    restricted = evaluate(train.select_models(["A", "C"]), test.select_models(["A", "C"]), feats)
    assert_same_metrics(restricted, result)
    assert set(result["zero_router"]["single_models"]) == {"A", "C"}


def test_a_renamed_model_is_named_on_both_sides(world) -> None:
    train, test, feats = world
    renamed = Outcomes(test.prompt_ids, test.prompts, test.tasks,
                       (test.models[0], test.models[1], ModelInfo("C-renamed", 0.0, 0.5)),
                       test.quality, test.cost)
    with pytest.warns(ModelMismatchWarning) as record:
        result = evaluate(train, renamed, feats)
    message = str(record[0].message)
    assert "training only: C" in message and "test only: C-renamed" in message
    assert set(result["zero_router"]["single_models"]) == {"A", "B"}


def test_no_shared_model_is_one_data_error(world) -> None:
    train, test, _ = world
    other = Outcomes(test.prompt_ids, test.prompts, test.tasks,
                     tuple(ModelInfo(f"x{m.name}", 0.0, 1.0) for m in test.models),
                     test.quality, test.cost)
    with pytest.raises(DataError, match="share no name"):
        evaluate_split(train, other, ROUTERS, "tfidf")  # fails before embedding anything


def test_shared_models_keeps_the_left_order_and_is_silent_when_sets_agree() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert shared_models(["b", "a", "c"], ["c", "b", "a"]) == ("b", "a", "c")
    with pytest.warns(ModelMismatchWarning, match="test only: d"):
        assert shared_models(["b", "a"], ["d", "a", "b"]) == ("b", "a")


def test_align_models_returns_both_tables_in_the_left_order(world) -> None:
    train, test, _ = world
    left, right = align_models(train, test.select_models(["B", "C", "A"]))
    assert left.model_names == right.model_names == ("A", "B", "C")
    np.testing.assert_array_equal(right.quality, test.quality)


# -- estimates meet outcomes by name -------------------------------------------------------------
def test_score_estimates_matches_estimate_columns_by_name(world) -> None:
    _, test, _ = world
    quality = np.nan_to_num(test.quality) * 0.8 + 0.1
    est = Estimates(models=test.model_names, quality=quality, cost=np.asarray(test.cost))
    order = [2, 0, 1]
    shuffled_est = Estimates(models=tuple(test.model_names[j] for j in order),
                             quality=quality[:, order], cost=np.asarray(test.cost)[:, order])
    assert_same_metrics(score_estimates({"r": est}, test), score_estimates({"r": shuffled_est},
                                                                           test))


def test_estimates_select_models_by_name() -> None:
    est = Estimates(models=("a", "b", "c"), quality=np.array([[0.1, 0.2, 0.3]]),
                    cost=np.array([[1.0, 2.0, 3.0]]))
    picked = est.select_models(["c", "a"])
    assert picked.models == ("c", "a")
    np.testing.assert_array_equal(picked.quality, [[0.3, 0.1]])
    np.testing.assert_array_equal(picked.cost, [[3.0, 1.0]])

"""Pipeline: featurizer + router + cost model, saved as one directory and loaded back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polyroute import DataError, Pipeline, RouterError, TradeoffPolicy, decisions
from polyroute.data import rule_cost
from polyroute.features import CachedFeaturizer, TfidfFeaturizer
from polyroute.pipeline import PIPELINE_FILE


@pytest.fixture
def fitted(two_cluster_split, tmp_path: Path):
    train, _ = two_cluster_split
    return Pipeline("knn", featurizer="tfidf", cache=tmp_path / "emb.sqlite").fit(train.outcomes)


def test_fit_estimate_route_with_tfidf(fitted, two_cluster_split) -> None:
    _, test = two_cluster_split
    texts = list(test.outcomes.prompts)
    est = fitted.estimate(texts)
    assert fitted.models == ("A", "B", "C")
    assert est.models == ("A", "B", "C") and est.quality.shape == (20, 3)
    # Costs are predicted before the call; for data recorded under the rule they are the rule.
    expected = [[rule_cost(t, m) for m in test.outcomes.models] for t in texts]
    np.testing.assert_allclose(est.cost, expected, rtol=1e-9)
    assert est.cost_scale == pytest.approx(max(expected[0]))
    chosen = [d.model for d in decisions(est, TradeoffPolicy(0.0))]
    assert chosen == list(test.best_model)


def test_save_load_round_trip(fitted, two_cluster_split, tmp_path: Path) -> None:
    texts = list(two_cluster_split[1].outcomes.prompts) + ["a prompt with unseen words"]
    path = fitted.save(tmp_path / "router")
    meta = json.loads((path / PIPELINE_FILE).read_text())
    assert meta["router"] == "knn" and meta["featurizer"] == "tfidf"
    assert meta["featurizer_id"].startswith("tfidf:")
    loaded = Pipeline.load(path, cache=False)
    assert loaded.models == fitted.models
    assert loaded.router.get_params() == fitted.router.get_params()
    a, b = fitted.estimate(texts), loaded.estimate(texts)
    np.testing.assert_allclose(b.quality, a.quality, atol=1e-6)
    np.testing.assert_allclose(b.cost, a.cost)
    assert b.cost_scale == a.cost_scale


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["linear", "mlp", "cluster", "best-single"])
def test_other_routers_round_trip_through_a_directory(name: str, two_cluster_split,
                                                      tmp_path: Path) -> None:
    train, test = two_cluster_split
    pipe = Pipeline(name, featurizer="tfidf", cache=False).fit(train.outcomes)
    loaded = Pipeline.load(pipe.save(tmp_path / name), cache=False)
    texts = list(test.outcomes.prompts)
    np.testing.assert_allclose(loaded.estimate(texts).quality, pipe.estimate(texts).quality,
                               atol=1e-6)


def test_cache_settings(two_cluster, tmp_path: Path, _isolated_cache: Path) -> None:
    o = two_cluster.outcomes
    explicit = Pipeline("best-single", featurizer="tfidf", cache=tmp_path / "mine.sqlite").fit(o)
    assert isinstance(explicit.featurizer, CachedFeaturizer)
    assert (tmp_path / "mine.sqlite").is_file()
    default = Pipeline("best-single", featurizer="tfidf").fit(o)
    assert default.featurizer.path == _isolated_cache / "embeddings.sqlite"
    none = Pipeline("best-single", featurizer="tfidf", cache=False).fit(o)
    assert isinstance(none.featurizer, TfidfFeaturizer)


def test_precomputed_features_skip_the_featurizer(two_cluster) -> None:
    pipe = Pipeline("knn", featurizer="no-such-model", cache=False)
    pipe.fit(two_cluster.outcomes, features=two_cluster.features)
    est = pipe.estimate(list(two_cluster.outcomes.prompts[:4]),
                        features=two_cluster.features[:4])
    assert [est.models[j] for j in est.quality.argmax(axis=1)] == ["A", "B", "A", "B"]


def test_featurizer_id_mismatch_on_load(fitted, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "router")
    meta = json.loads((path / PIPELINE_FILE).read_text())
    meta["featurizer_id"] = "tfidf:59:000000000000"
    (path / PIPELINE_FILE).write_text(json.dumps(meta))
    with pytest.raises(RouterError, match="tfidf:59:000000000000"):
        Pipeline.load(path)


def test_featurizer_replaced_on_disk_is_detected(fitted, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "router")
    TfidfFeaturizer().fit([f"other words number {i} here" for i in range(30)]).save(path)
    with pytest.raises(RouterError, match="featurizer"):
        Pipeline.load(path)


def test_loading_a_directory_that_is_not_a_router(tmp_path: Path) -> None:
    with pytest.raises(RouterError, match="not a trained router"):
        Pipeline.load(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RouterError, match="polyroute train"):
        Pipeline.load(tmp_path)
    with pytest.raises(RouterError):
        Pipeline.load(tmp_path / "missing")


def test_loading_a_corrupt_or_foreign_router_file(fitted, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "router")
    (path / PIPELINE_FILE).write_text("{corrupt")
    with pytest.raises(RouterError, match="corrupt"):
        Pipeline.load(path)
    path = fitted.save(tmp_path / "future")
    meta = json.loads((path / PIPELINE_FILE).read_text())
    (path / PIPELINE_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(RouterError, match="format version 99"):
        Pipeline.load(path)
    path = fitted.save(tmp_path / "no-state")
    (path / "router_state.json").unlink()
    with pytest.raises(RouterError, match="not a saved polyroute router"):
        Pipeline.load(path)


@pytest.mark.parametrize("name", ["router_arrays.npz", "featurizer.npz", "featurizer.json"])
def test_truncated_files_are_a_router_error(fitted, tmp_path: Path, name: str) -> None:
    path = fitted.save(tmp_path / "router")
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(RouterError, match="router|featurizer"):
        Pipeline.load(path)


def test_unfitted_pipeline(tmp_path: Path) -> None:
    pipe = Pipeline("knn", featurizer="tfidf")
    with pytest.raises(RouterError, match="not fitted"):
        pipe.estimate(["x"])
    with pytest.raises(RouterError, match="unfitted"):
        pipe.save(tmp_path)
    with pytest.raises(RouterError):
        _ = pipe.models
    with pytest.raises(RouterError, match="unknown router"):
        Pipeline("no-such-router")
    with pytest.raises(RouterError, match="k_max"):
        Pipeline("knn", router_params={"k_max": 3})


def test_oracle_pipeline_cannot_be_saved(two_cluster, tmp_path: Path) -> None:
    pipe = Pipeline("oracle", featurizer="tfidf", cache=False).fit(two_cluster.outcomes)
    with pytest.raises(RouterError, match="cannot be saved"):
        pipe.save(tmp_path / "oracle")


def test_add_model_from_a_few_answers(two_cluster_factory, tmp_path: Path) -> None:
    """A model unknown at training time joins from a few answers, with its prices."""
    world = two_cluster_factory(30)
    without_b = world.outcomes.select_models(["A", "C"])
    pipe = Pipeline("irt", featurizer="tfidf", cache=False).fit(without_b)
    truth = dict(zip(world.outcomes.prompts, world.outcomes.quality[:, 1], strict=True))
    b_info = world.outcomes.models[1]
    asked_texts: list[str] = []

    def ask(texts: list[str]) -> list[float]:
        asked_texts.extend(texts)
        return [truth[t] for t in texts]

    asked = pipe.add_model(b_info, ask, list(world.outcomes.prompts), budget=20)
    assert len(asked) == 20 and len(set(asked_texts)) == 20
    assert pipe.models == ("A", "C", "B")
    poetry = [t for t, task in zip(world.outcomes.prompts, world.outcomes.tasks, strict=True)
              if task == "poetry"]
    est = pipe.estimate(poetry)
    # B (the only model that writes poetry) is now estimated best there, and priced by its list
    # price with the output length the other models imply.
    assert np.mean(est.quality.argmax(axis=1) == 2) > 0.8
    assert np.all(est.cost[:, 2] > 0)
    loaded = Pipeline.load(pipe.save(tmp_path / "r"), cache=False)
    assert loaded.models == ("A", "C", "B")
    with pytest.raises(DataError, match="already a candidate"):
        loaded.add_model(b_info, ask, poetry, budget=1)
    np.testing.assert_allclose(loaded.estimate(poetry).quality, est.quality)


def test_add_model_needs_a_router_that_can(two_cluster, tmp_path: Path) -> None:
    pipe = Pipeline("knn", featurizer="tfidf", cache=False).fit(two_cluster.outcomes)
    with pytest.raises(RouterError, match="cannot add a model"):
        pipe.add_model(two_cluster.outcomes.models[0], lambda texts: [1.0] * len(texts),
                       ["x"], budget=1)

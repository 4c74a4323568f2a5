"""k-nearest-neighbours: cosine neighbours' mean quality, with k chosen by cross-validation."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.data import ModelInfo, Outcomes
from polyroute.routers import make_router


def table(quality: np.ndarray) -> Outcomes:
    n, m = quality.shape
    return Outcomes(tuple(f"p{i}" for i in range(n)), tuple(f"prompt {i}" for i in range(n)),
                    ("t",) * n, tuple(ModelInfo(f"M{j}", 1.0, 1.0) for j in range(m)),
                    quality, np.ones((n, m)))


def test_estimate_is_the_mean_of_the_k_most_similar_prompts() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    q = np.array([[1.0, 0.0], [0.5, 0.0], [0.0, 1.0], [0.25, 0.5]])
    router = make_router("knn", k=2).fit(table(q), x)
    assert router.k_ == 2
    est = router.estimate(np.array([[1.0, 0.05], [0.05, 1.0]], dtype=np.float32))
    np.testing.assert_allclose(est.quality, [[0.75, 0.0], [0.125, 0.75]])
    # Cosine similarity: the length of the query does not matter.
    scaled = router.estimate(np.array([[20.0, 1.0], [0.5, 10.0]], dtype=np.float32))
    np.testing.assert_allclose(scaled.quality, est.quality)


def test_unknown_neighbour_cells_are_skipped() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    q = np.array([[1.0, np.nan], [0.5, 0.2], [0.0, 1.0]])
    est = make_router("knn", k=2).fit(table(q), x).estimate(np.array([[1.0, 0.0]], np.float32))
    np.testing.assert_allclose(est.quality, [[0.75, 0.2]])


def test_k_is_chosen_small_when_neighbours_are_informative(two_cluster_factory) -> None:
    world = two_cluster_factory(40)  # 80 prompts in two clean clusters
    router = make_router("knn", k_grid=(5, 60)).fit(world.outcomes, world.features)
    # 60 neighbours would mix the clusters; 5 stay inside one.
    assert router.k_ == 5


def test_k_is_chosen_large_when_quality_is_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    q = (rng.random((120, 2)) < 0.5).astype(float)  # quality unrelated to the prompt
    router = make_router("knn", k_grid=(1, 60)).fit(table(q), x)
    # Averaging many neighbours estimates the (constant) mean better than copying one.
    assert router.k_ == 60


def test_default_grid_is_limited_by_the_training_size(two_cluster_factory) -> None:
    world = two_cluster_factory(5)  # 10 prompts; 5-fold CV trains on 8
    router = make_router("knn").fit(world.outcomes, world.features)
    assert router.k_ in {k for k in router.k_grid if k < 8}


def test_cv_choice_is_seeded(two_cluster_factory) -> None:
    world = two_cluster_factory(30, noise=0.8)
    a = make_router("knn", random_state=1).fit(world.outcomes, world.features)
    b = make_router("knn", random_state=1).fit(world.outcomes, world.features)
    assert a.k_ == b.k_ and a.k_ in a.k_grid


@pytest.mark.parametrize("k", [1, 3, 1000])
def test_explicit_k_skips_cross_validation(k: int, two_cluster) -> None:
    router = make_router("knn", k=k).fit(two_cluster.outcomes, two_cluster.features)
    assert router.k_ == k
    est = router.estimate(two_cluster.features)
    if k >= two_cluster.outcomes.n_prompts:  # every prompt is a neighbour: the global mean
        np.testing.assert_allclose(est.quality, np.tile([0.55, 0.5, 0.4], (40, 1)))


# -- the search index ----------------------------------------------------------------------------
def _separated_groups(groups: int = 30, size: int = 6, dim: int = 16, seed: int = 0):
    """``groups`` tight bundles of ``size`` prompts around random directions: a query near a
    bundle's centre has exactly that bundle as its ``size`` nearest neighbours."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, size, axis=0) + 0.01 * rng.normal(size=(groups * size, dim))
    group = np.repeat(np.arange(groups), size)
    q = np.stack([group % 2 == 0, group % 3 == 0], axis=1).astype(float)  # known per group
    return x.astype(np.float32), q, centres.astype(np.float32), group


def test_hnsw_and_exact_search_find_the_same_known_neighbours() -> None:
    from polyroute.neighbours import NeighbourIndex, unit_rows

    x, _q, centres, group = _separated_groups()
    for kind in ("exact", "hnsw"):
        index = NeighbourIndex(unit_rows(x), kind=kind)
        assert index.approximate == (kind == "hnsw")
        rows, valid = index.search(unit_rows(centres), 6)
        assert valid.all()
        for g in range(len(centres)):
            assert set(rows[g].tolist()) == set(np.flatnonzero(group == g).tolist()), kind


def test_knn_estimates_agree_between_exact_and_hnsw() -> None:
    x, q, centres, _group = _separated_groups()
    exact = make_router("knn", k=6, index="exact").fit(table(q), x)
    approx = make_router("knn", k=6, index="hnsw").fit(table(q), x)
    assert not exact._index.approximate and approx._index.approximate
    expected = np.stack([np.arange(30) % 2 == 0, np.arange(30) % 3 == 0], axis=1).astype(float)
    np.testing.assert_allclose(exact.estimate(centres).quality, expected)
    np.testing.assert_allclose(approx.estimate(centres).quality, expected)


def test_auto_switches_to_the_graph_above_the_threshold(monkeypatch) -> None:
    import polyroute.neighbours as neighbours

    monkeypatch.setattr(neighbours, "EXACT_UP_TO", 100 * 16)  # 100 prompts of 16 floats
    x, q, _c, _g = _separated_groups(groups=16)  # 96 prompts: at the threshold, exact
    assert not make_router("knn", k=6).fit(table(q), x)._index.approximate
    x, q, _c, _g = _separated_groups(groups=17)  # 102 prompts: above it, the graph
    router = make_router("knn", k=6).fit(table(q), x)
    assert router._index.approximate
    router.index = "exact"  # the parameter stays selectable after fit
    router.estimate(x[:1])
    assert not router._index.approximate


def test_save_load_rebuilds_the_graph_from_the_saved_vectors(tmp_path) -> None:
    from polyroute.routers import Router

    x, q, centres, _group = _separated_groups()
    router = make_router("knn", k=6, index="hnsw").fit(table(q), x)
    router.save(tmp_path / "r")
    # JSON + npz only: the graph is derived state, not a file of its own.
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["router_arrays.npz",
                                                                   "router_state.json"]
    loaded = Router.load(tmp_path / "r")
    assert loaded.index == "hnsw" and loaded._index.approximate
    np.testing.assert_allclose(loaded.estimate(centres).quality,
                               router.estimate(centres).quality)


@pytest.mark.parametrize("index", ["exact", "hnsw"])
def test_k_chosen_on_a_sample_of_held_out_prompts(index: str, two_cluster_factory) -> None:
    world = two_cluster_factory(150)  # 300 prompts, only 40 of them scored in the CV
    router = make_router("knn", k_grid=(5, 200), cv_sample=40, index=index).fit(
        world.outcomes, world.features)
    assert router.k_ == 5  # 200 neighbours would mix the clusters


def test_cluster_finds_the_same_centres_with_either_index() -> None:
    x, q, centres, group = _separated_groups(groups=12)
    exact = make_router("cluster", n_clusters=12, index="exact").fit(table(q), x)
    approx = make_router("cluster", n_clusters=12, index="hnsw").fit(table(q), x)
    np.testing.assert_array_equal(exact.predict_cluster(x), approx.predict_cluster(x))
    # Each bundle is one cluster.
    labels = exact.predict_cluster(x)
    assert all(len(set(labels[group == g])) == 1 for g in range(12))

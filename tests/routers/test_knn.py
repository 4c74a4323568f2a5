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

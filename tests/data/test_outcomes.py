"""The Outcomes table: immutable, validated, and sliced into new tables that share nothing
mutable with the old one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from polyroute.data import ModelInfo, Outcomes
from polyroute.errors import DataError


def small(**changes) -> Outcomes:
    fields = dict(
        prompt_ids=("a", "b", "c"), prompts=("x?", "y?", "z?"), tasks=("t1", "t2", "t1"),
        models=(ModelInfo("M", 1.0, 2.0), ModelInfo("N", 0.5, 0.5)),
        quality=np.array([[1.0, 0.0], [0.5, np.nan], [0.0, 1.0]]),
        cost=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
    )
    fields.update(changes)
    return Outcomes(**fields)


def test_shape_and_summaries() -> None:
    o = small()
    assert len(o) == o.n_prompts == 3
    assert o.model_names == ("M", "N")
    assert o.task_names == ("t1", "t2")
    np.testing.assert_allclose(o.mean_quality(), [0.5, 0.5])
    np.testing.assert_allclose(o.mean_cost(), [3.0, 4.0])
    assert "3 prompts × 2 models" in repr(o)


def test_arrays_are_read_only_and_copied() -> None:
    quality = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    o = small(quality=quality)
    quality[0, 0] = 0.25  # the caller's array is not shared
    assert o.quality[0, 0] == 1.0
    with pytest.raises(ValueError):
        o.quality[0, 0] = 0.0
    with pytest.raises(ValueError):
        o.cost[0, 0] = 0.0


def test_fields_cannot_be_reassigned() -> None:
    o = small()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.prompts = ("other",)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.models[0].input_price_per_mtok = 0.0  # type: ignore[misc]


def test_subset_by_indices_and_mask() -> None:
    o = small()
    by_index = o.subset([2, 0])
    assert by_index.prompt_ids == ("c", "a")
    assert by_index.tasks == ("t1", "t1")
    np.testing.assert_array_equal(by_index.quality, [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(by_index.cost, [[5.0, 6.0], [1.0, 2.0]])
    by_mask = o.subset(np.array([False, True, True]))
    assert by_mask.prompt_ids == ("b", "c")
    assert o.prompt_ids == ("a", "b", "c")  # the original is untouched
    assert by_mask.quality.flags.writeable is False
    assert o.subset([]).n_prompts == 0


def test_subset_keeps_latency() -> None:
    o = small(latency=np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(o.subset([1]).latency, [[2.0, 3.0]])
    np.testing.assert_array_equal(o.select_models(["N"]).latency, [[1.0], [3.0], [5.0]])


def test_select_models() -> None:
    o = small()
    swapped = o.select_models(["N", "M"])
    assert swapped.model_names == ("N", "M")
    np.testing.assert_array_equal(swapped.cost[:, 0], [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(swapped.quality[0], [0.0, 1.0])
    with pytest.raises(DataError, match="unknown model.*Q"):
        o.select_models(["M", "Q"])


def test_sample_is_seeded() -> None:
    o = small()
    assert o.sample(5) is o
    a, b = o.sample(2, random_state=3), o.sample(2, random_state=3)
    assert a.prompt_ids == b.prompt_ids
    assert len(a) == 2 and set(a.prompt_ids) <= set(o.prompt_ids)


@pytest.mark.parametrize("n", [0, -5])
def test_sample_size_must_be_positive(n: int) -> None:
    with pytest.raises(DataError, match=f"at least 1, got {n}"):
        small().sample(n)


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"prompts": ("x?",)}, "differ in length"),
    ({"quality": np.zeros((2, 2))}, "quality has shape"),
    ({"cost": np.zeros((3, 3))}, "cost has shape"),
    ({"latency": np.zeros((1, 2))}, "latency has shape"),
    ({"quality": np.full((3, 2), 1.5)}, "[0, 1]"),
    ({"prompt_ids": ("a", "a", "c")}, "not unique"),
    ({"models": (ModelInfo("M", 1, 1), ModelInfo("M", 1, 1))}, "model names are not unique"),
])
def test_validation_errors(changes: dict, fragment: str) -> None:
    with pytest.raises(DataError) as info:
        small(**changes)
    assert fragment in str(info.value)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1"])
def test_model_info_rejects_bad_prices(bad) -> None:
    with pytest.raises(DataError, match="input_price_per_mtok"):
        ModelInfo("M", bad, 1.0)


def test_two_cluster_fixture_is_what_it_says(two_cluster) -> None:
    o = two_cluster.outcomes
    assert o.task_names == ("math", "poetry")
    np.testing.assert_allclose(o.mean_quality(), [0.55, 0.5, 0.4])
    assert list(two_cluster.best_model[:2]) == ["A", "B"]
    assert two_cluster.features.shape == (40, 8)

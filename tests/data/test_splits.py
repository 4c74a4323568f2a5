"""Seeded, disjoint splits: a single split, k folds, and leave-one-task-out."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.data import ModelInfo, Outcomes, kfold, leave_task_out, train_test_split
from polyroute.errors import DataError


@pytest.fixture
def table() -> Outcomes:
    n = 23
    rng = np.random.default_rng(0)
    tasks = tuple(["alpha", "beta", "gamma"][i % 3] for i in range(n))
    return Outcomes(tuple(f"id{i}" for i in range(n)), tuple(f"prompt {i}" for i in range(n)),
                    tasks, (ModelInfo("M", 1, 1), ModelInfo("N", 2, 2)),
                    rng.random((n, 2)), rng.random((n, 2)))


def test_train_test_split_is_disjoint_and_complete(table: Outcomes) -> None:
    train, test = train_test_split(table, test_size=0.3, random_state=1)
    assert len(test) == round(23 * 0.3)
    assert set(train.prompt_ids).isdisjoint(test.prompt_ids)
    assert set(train.prompt_ids) | set(test.prompt_ids) == set(table.prompt_ids)
    # Rows keep their data.
    i = table.prompt_ids.index(test.prompt_ids[0])
    np.testing.assert_array_equal(test.quality[0], table.quality[i])


def test_train_test_split_is_seeded(table: Outcomes) -> None:
    a = train_test_split(table, 0.25, random_state=7)
    b = train_test_split(table, 0.25, random_state=7)
    c = train_test_split(table, 0.25, random_state=8)
    assert a[1].prompt_ids == b[1].prompt_ids
    assert a[1].prompt_ids != c[1].prompt_ids


@pytest.mark.parametrize("size", [0, 1, -0.2, 1.5])
def test_train_test_split_rejects_bad_sizes(table: Outcomes, size: float) -> None:
    with pytest.raises(DataError, match="test_size"):
        train_test_split(table, size)


def test_train_test_split_too_small() -> None:
    one = Outcomes(("a",), ("x",), ("t",), (ModelInfo("M", 1, 1),), np.ones((1, 1)),
                   np.ones((1, 1)))
    with pytest.raises(DataError, match="cannot split 1 prompts"):
        train_test_split(one, 0.5)


@pytest.mark.parametrize("k", [2, 3, 5, 23])
def test_kfold_covers_every_prompt_exactly_once(table: Outcomes, k: int) -> None:
    folds = list(kfold(table, k, random_state=0))
    assert len(folds) == k
    seen: list[str] = []
    for train, test in folds:
        assert set(train.prompt_ids).isdisjoint(test.prompt_ids)
        assert len(train) + len(test) == len(table)
        seen.extend(test.prompt_ids)
    assert sorted(seen) == sorted(table.prompt_ids)
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_is_seeded(table: Outcomes) -> None:
    a = [t.prompt_ids for _, t in kfold(table, 4, random_state=2)]
    b = [t.prompt_ids for _, t in kfold(table, 4, random_state=2)]
    c = [t.prompt_ids for _, t in kfold(table, 4, random_state=3)]
    assert a == b
    assert a != c


@pytest.mark.parametrize("k", [1, 0, 24])
def test_kfold_rejects_bad_counts(table: Outcomes, k: int) -> None:
    with pytest.raises(DataError, match="n_splits"):
        list(kfold(table, k))


def test_leave_task_out_holds_out_exactly_one_task(table: Outcomes) -> None:
    splits = list(leave_task_out(table))
    assert [task for task, _, _ in splits] == ["alpha", "beta", "gamma"]
    for task, train, test in splits:
        assert set(test.tasks) == {task}
        assert task not in train.tasks
        assert len(train) + len(test) == len(table)
        assert test.n_prompts == table.tasks.count(task)


def test_leave_task_out_chosen_tasks(table: Outcomes) -> None:
    assert [t for t, _, _ in leave_task_out(table, ["gamma"])] == ["gamma"]
    with pytest.raises(DataError, match="unknown task 'delta'.*alpha, beta, gamma"):
        list(leave_task_out(table, ["delta"]))


def test_leave_task_out_needs_two_tasks(table: Outcomes) -> None:
    one_task = table.subset(np.flatnonzero(np.asarray(table.tasks) == "alpha"))
    with pytest.raises(DataError, match="at least two"):
        list(leave_task_out(one_task))

"""Train/test splits. Every split is seeded so an evaluation can be repeated exactly."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.errors import DataError


def train_test_split(
    outcomes: Outcomes, test_size: float = 0.2, random_state: int | None = 0
) -> tuple[Outcomes, Outcomes]:
    """A seeded random split; ``test_size`` is a fraction in (0, 1)."""
    if not 0 < test_size < 1:
        raise DataError(f"test_size must be a fraction in (0, 1), got {test_size}")
    n = outcomes.n_prompts
    n_test = int(round(n * test_size))
    if n_test < 1 or n_test >= n:
        raise DataError(f"cannot split {n} prompts with test_size={test_size}")
    perm = np.random.default_rng(random_state).permutation(n)
    return outcomes.subset(np.sort(perm[n_test:])), outcomes.subset(np.sort(perm[:n_test]))


def kfold(
    outcomes: Outcomes, n_splits: int = 5, random_state: int | None = 0
) -> Iterator[tuple[Outcomes, Outcomes]]:
    """Yield ``n_splits`` (train, test) pairs; each prompt is in exactly one test fold."""
    n = outcomes.n_prompts
    if n_splits < 2 or n_splits > n:
        raise DataError(f"n_splits must be between 2 and the number of prompts ({n})")
    perm = np.random.default_rng(random_state).permutation(n)
    for fold in np.array_split(perm, n_splits):
        mask = np.zeros(n, dtype=bool)
        mask[fold] = True
        yield outcomes.subset(~mask), outcomes.subset(mask)


def leave_task_out(
    outcomes: Outcomes, tasks: list[str] | None = None
) -> Iterator[tuple[str, Outcomes, Outcomes]]:
    """Yield (task, train on all other tasks, test on that task): an out-of-distribution check."""
    labels = np.asarray(outcomes.tasks)
    available = outcomes.task_names
    if len(available) < 2:
        raise DataError("leave-task-out needs at least two task labels in the data")
    for task in tasks or available:
        if task not in available:
            raise DataError(f"unknown task {task!r}; the data has: {', '.join(available)}")
        held = labels == task
        yield task, outcomes.subset(~held), outcomes.subset(held)

"""The vector index: exact and approximate (HNSW) search agree, removal works in both modes."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.cache import VectorIndex


def _unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_ranks_by_cosine():
    index = VectorIndex(3)
    index.add(1, np.array([1.0, 0, 0]))
    index.add(2, np.array([1.0, 1.0, 0]))  # normalised on the way in
    index.add(3, np.array([0, 0, 5.0]))
    found = index.search(np.array([2.0, 0.1, 0]), k=3)
    assert [i for i, _ in found] == [1, 2, 3]
    assert found[0][1] == pytest.approx(2 / np.hypot(2, 0.1), abs=1e-6)
    assert found[2][1] == pytest.approx(0.0, abs=1e-6)
    assert not index.approximate


def test_exact_and_approximate_agree_and_switch_by_size():
    rows = _unit_rows(600, 32, 0)
    queries = rows[:50] + 0.05 * _unit_rows(50, 32, 1)
    exact = VectorIndex(32, switch_at=10**6)
    for i, row in enumerate(rows):
        exact.add(i, row)
    truth = [exact.search(q, k=1)[0] for q in queries]
    answers = []
    for _ in range(4):  # the graph is rebuilt the same way every time
        approx = VectorIndex(32, switch_at=100)
        for i, row in enumerate(rows):
            approx.add(i, row)
        assert approx.approximate and not exact.approximate
        found = [approx.search(q, k=1)[0] for q in queries]
        answers.append([key for key, _ in found])
        # Each query sits next to one stored row: a sound graph of 600 points finds it every
        # time (a multi-threaded build lost 1-3 of the 50, differently on each run).
        assert [key for key, _ in found] == [key for key, _ in truth]
        assert [s for _, s in found] == pytest.approx([s for _, s in truth], abs=1e-4)
    assert all(a == answers[0] for a in answers)


def test_removal_in_both_modes_and_back_to_exact_when_small():
    rows = _unit_rows(300, 16, 2)
    index = VectorIndex(16, switch_at=100)
    for i, row in enumerate(rows):
        index.add(i, row)
    assert index.approximate
    index.remove(7)
    assert 7 not in index and all(i != 7 for i, _ in index.search(rows[7], k=5))
    for i in range(8, 260):
        index.remove(i)
    assert not index.approximate and len(index) == 47
    assert index.search(rows[3], k=1)[0][0] == 3


def test_wrong_dimension_is_refused():
    with pytest.raises(ValueError, match="dimensions"):
        VectorIndex(4).add(1, np.ones(5))

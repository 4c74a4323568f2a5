"""The cost–quality hull and the numbers read off it, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.evaluation import aiq, cost_to_reach, hull_quality_at, pareto_hull

# (2, 0.6) lies under the chord from (1, 0.5) to (3, 0.9), which passes 0.7 at cost 2;
# (2.5, 0.4) costs more than (1, 0.5) and delivers less: dominated.
POINTS = np.array([[1.0, 0.5], [2.0, 0.6], [3.0, 0.9], [2.5, 0.4]])
HULL = np.array([[1.0, 0.5], [3.0, 0.9]])


def test_hull_by_hand() -> None:
    np.testing.assert_allclose(pareto_hull(POINTS), HULL)
    np.testing.assert_allclose(pareto_hull(POINTS[::-1]), HULL)  # input order is irrelevant


def test_hull_keeps_points_above_the_chord() -> None:
    points = np.array([[1.0, 0.5], [2.0, 0.8], [3.0, 0.9], [2.5, 0.4]])
    np.testing.assert_allclose(pareto_hull(points), [[1.0, 0.5], [2.0, 0.8], [3.0, 0.9]])


def test_hull_is_non_decreasing() -> None:
    # Paying more for less is never on the hull, even at the expensive end.
    points = np.array([[1.0, 0.5], [2.0, 0.9], [3.0, 0.7], [4.0, 0.2]])
    np.testing.assert_allclose(pareto_hull(points), [[1.0, 0.5], [2.0, 0.9]])


def test_hull_ties() -> None:
    # Same cost: the better point wins. Same quality: the cheaper point wins.
    np.testing.assert_allclose(pareto_hull([[1.0, 0.5], [1.0, 0.7]]), [[1.0, 0.7]])
    np.testing.assert_allclose(pareto_hull([[1.0, 0.5], [2.0, 0.5]]), [[1.0, 0.5]])
    # Duplicates collapse; collinear middle points are not vertices.
    np.testing.assert_allclose(pareto_hull([[1.0, 0.5], [1.0, 0.5], [2.0, 0.6], [3.0, 0.7]]),
                               [[1.0, 0.5], [3.0, 0.7]])


def test_hull_of_one_point_and_of_nothing() -> None:
    np.testing.assert_allclose(pareto_hull([[2.0, 0.3]]), [[2.0, 0.3]])
    assert len(pareto_hull(np.empty((0, 2)))) == 0
    np.testing.assert_allclose(pareto_hull([[np.nan, 0.9], [1.0, 0.2]]), [[1.0, 0.2]])


def test_quality_at_budgets() -> None:
    got = hull_quality_at(HULL, [0.5, 0.999, 1.0, 2.0, 2.5, 3.0, 10.0])
    np.testing.assert_allclose(got, [0.0, 0.0, 0.5, 0.7, 0.8, 0.9, 0.9])
    assert hull_quality_at(HULL, 2.0).shape == (1,)
    np.testing.assert_array_equal(hull_quality_at(np.empty((0, 2)), [1.0, 2.0]), [0.0, 0.0])


def test_aiq_by_hand() -> None:
    # Budgets 0, 1, 2, 3, 4 read 0 (below the cheapest point), .5, .7, .9, .9 (flat past it).
    assert aiq(HULL, 0.0, 4.0, n=5) == pytest.approx((0 + 0.5 + 0.7 + 0.9 + 0.9) / 5)
    # Between the two vertices the hull is a straight line: its mean is the midpoint.
    assert aiq(HULL, 1.0, 3.0) == pytest.approx(0.7)
    assert aiq(pareto_hull(POINTS), 1.0, 3.0) == pytest.approx(0.7)


def test_aiq_is_zero_below_the_cheapest_point_and_flat_beyond_the_dearest() -> None:
    assert aiq(HULL, 0.1, 0.9) == 0.0
    assert aiq(HULL, 3.0, 50.0) == pytest.approx(0.9)
    assert aiq(HULL, 5.0, 5.0) == pytest.approx(0.9)


def test_aiq_of_one_point() -> None:
    hull = pareto_hull([[2.0, 0.6]])
    assert aiq(hull, 2.0, 2.0) == pytest.approx(0.6)
    # Over [1, 3] with 3 budgets: 0 at 1, 0.6 at 2 and 3.
    assert aiq(hull, 1.0, 3.0, n=3) == pytest.approx(0.4)


def test_aiq_rejects_an_inverted_range() -> None:
    with pytest.raises(ValueError, match="below"):
        aiq(HULL, 3.0, 1.0)


@pytest.mark.parametrize(("quality", "cost"), [
    (0.3, 1.0),  # already reached at the cheapest point
    (0.5, 1.0),
    (0.7, 2.0),  # on the chord
    (0.8, 2.5),
    (0.9, 3.0),
    (0.95, None),  # never
])
def test_cost_to_reach_by_hand(quality: float, cost: float | None) -> None:
    got = cost_to_reach(HULL, quality)
    if cost is None:
        assert got is None
    else:
        assert got == pytest.approx(cost)


def test_cost_to_reach_on_a_three_vertex_hull() -> None:
    hull = pareto_hull([[1.0, 0.5], [2.0, 0.8], [3.0, 0.9]])
    assert cost_to_reach(hull, 0.65) == pytest.approx(1.5)
    assert cost_to_reach(hull, 0.85) == pytest.approx(2.5)
    assert cost_to_reach(np.empty((0, 2)), 0.1) is None

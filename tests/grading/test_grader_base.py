"""The grader contract and registry: every bundled metric has a grader; unusable is ungraded."""

from __future__ import annotations

import pytest

from polyroute.data import Choices, Reference, load_references
from polyroute.errors import ConfigError, DataError
from polyroute.grading import Grade, available_metrics, make_grader
from polyroute.grading.base import Grader, register


def test_every_bundled_metric_has_a_grader() -> None:
    metrics = {r.metric for r in load_references().values()}
    assert metrics <= set(available_metrics())
    assert "judge" in available_metrics()


def test_unknown_metric_and_parameter_are_named() -> None:
    with pytest.raises(DataError, match="no grader for metric 'bleu'; graders exist for: GSM8K"):
        make_grader("bleu")
    with pytest.raises(ConfigError, match="grader 'em_mc'.*colour"):
        make_grader("em_mc", colour="red")


def test_unusable_reference_is_ungraded_not_zero() -> None:
    ref = Reference("p", "arc_challenge", "em_mc", "4",
                    Choices(("1", "2", "3", "4"), ("a", "b", "c", "d")), usable=False,
                    note="choice label '4' is not a letter")
    grade = make_grader("em_mc").grade("The answer is (4).", ref)
    assert grade == Grade(None, "reference not usable: choice label '4' is not a letter")
    assert not grade.graded


def test_a_score_outside_the_unit_interval_is_a_bug() -> None:
    class Broken(Grader):
        def _grade(self, answer: str, reference: Reference) -> Grade:
            return Grade(1.5)

    with pytest.raises(ValueError, match="Broken produced score 1.5"):
        Broken().grade("x", Reference("p", "t", "m", "x"))


def test_a_metric_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="'em_mc' registered twice"):
        @register("em_mc")
        class Other(Grader):
            def _grade(self, answer: str, reference: Reference) -> Grade:
                return Grade(0.0)

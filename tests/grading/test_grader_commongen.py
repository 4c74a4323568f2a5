"""commongen_coverage: the share of concepts used, inflections allowed."""

from __future__ import annotations

import pytest

from polyroute.data import Reference
from polyroute.grading import make_grader
from polyroute.grading.commongen import inflections

REF = Reference("p", "commongen", "commongen_coverage", "dog, frisbee, catch, throw")


@pytest.mark.parametrize("answer, score", [
    ("The dog catches the frisbee when I throw it.", 1.0),
    ("Dogs, frisbees: catching and throwing!", 1.0),
    ("A dog runs.", 0.25),
    ("The dog threw a frisbee.", 0.5),        # irregular "threw" is not credited
    ("", 0.0),
    ("Nothing relevant here.", 0.0),
    ("hotdog frisbeeish", 0.0),               # words, not substrings
])
def test_coverage(answer: str, score: float) -> None:
    assert make_grader("commongen_coverage").grade(answer, REF).score == pytest.approx(score)


def test_inflections_and_multiword_concepts() -> None:
    assert {"cities", "city"} <= inflections("city")
    assert {"dancing", "danced"} <= inflections("dance")
    assert {"running", "stopped"} <= inflections("run") | inflections("stop")
    ref = Reference("p", "commongen", "commongen_coverage", "ice cream, beach")
    assert make_grader("commongen_coverage").grade("Ice creams at the beach.", ref).score == 1.0
    assert make_grader("commongen_coverage").grade("Cream and ice; beach.", ref).score == 0.5


def test_detail_names_the_missing_concepts() -> None:
    grade = make_grader("commongen_coverage").grade("A dog.", REF)
    assert grade.detail == "missing 3: frisbee, catch, throw"

"""MATH: the boxed answer, normalised as LLMRouter (Hendrycks) did, read more widely by default."""

from __future__ import annotations

import pytest

from polyroute.data import Reference
from polyroute.grading import make_grader
from polyroute.grading.math_answer import normalize_math, read_answer


def ref(truth: str, task: str = "math") -> Reference:
    return Reference("p", task, "MATH", truth)


HALF = ref("So the probability is $\\boxed{\\frac{1}{2}}$.")


@pytest.mark.parametrize("answer", [
    "\\boxed{\\frac{1}{2}}", "\\boxed{\\frac12}", "\\boxed{1/2}", "\\boxed{0.5}",
    "$\\boxed{\\dfrac{1}{2}}$", "so \\boxed{ \\frac{1}{2} }.", "\\fbox{\\frac{1}{2}}",
    "The answer is $\\frac{1}{2}$.", "Final answer: 1/2", "#### \\frac{1}{2}", "$\\frac{1}{2}$",
    "First \\boxed{3}, no wait: \\boxed{\\frac{1}{2}}",
])
def test_right_answers_score_one(answer: str) -> None:
    assert make_grader("MATH").grade(answer, HALF).score == 1.0


@pytest.mark.parametrize("answer", [
    "\\boxed{\\frac{1}{3}}", "\\boxed{2}", "The answer is $\\frac{2}{3}$.", "",
    "I give up on this.",
    "\\boxed{\\frac{1}{2}} no wait \\boxed{1}",
])
def test_wrong_answers_score_zero(answer: str) -> None:
    assert make_grader("MATH").grade(answer, HALF).score == 0.0


@pytest.mark.parametrize("answer, truth", [
    ("\\boxed{(3,\\frac{\\pi}{2})}", "$\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$"),
    ("\\boxed{10}", "\\boxed{10\\text{ cm}}"),
    ("\\boxed{5}", "\\boxed{x = 5}"),
    ("\\boxed{90}", "\\boxed{90^\\circ}"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\boxed{\\frac{\\sqrt3}{2}}"),
    ("\\boxed{42.0}", "\\boxed{42}"),
    ("\\boxed{1,000}", "\\boxed{1000}"),
    ("\\boxed{0.75}", "\\boxed{\\frac{3}{4}}"),
    ("\\boxed{\\text{(C)}}", "\\boxed{(C)}"),
    ("\\boxed{16}", "16"),                      # agentverse-mgsm: a bare reference
    ("16", "16"),
])
def test_normalisation_makes_equal_answers_equal(answer: str, truth: str) -> None:
    assert make_grader("MATH").grade(answer, ref(truth)).score == 1.0


@pytest.mark.parametrize("answer, truth, llmrouter", [
    ("\\boxed{\\frac12}", "\\boxed{\\frac{1}{2}}", 1.0),
    ("\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", 1.0),
    ("\\boxed{10}", "\\boxed{10\\text{ cm}}", 1.0),
    ("The answer is $\\frac{1}{2}$.", "\\boxed{\\frac{1}{2}}", 0.0),   # no box, no score
    ("\\boxed{42.0}", "\\boxed{42}", 0.0),
    ("\\fbox{3}", "\\boxed{3}", 0.0),
    ("16", "16", 0.0),
])
def test_strict_is_llmrouters_rule(answer: str, truth: str, llmrouter: float) -> None:
    assert make_grader("MATH", strict=True).grade(answer, ref(truth)).score == llmrouter


def test_normalisation_steps() -> None:
    assert normalize_math("\\left( \\dfrac12, .5 \\right)") == "(\\frac{1}{2},0.5)"
    assert normalize_math("k = \\sqrt3") == "\\sqrt{3}"
    assert normalize_math("50\\%") == "50"
    assert normalize_math("3/4") == "\\frac{3}{4}"


def test_reading_needs_a_statement_or_a_short_answer() -> None:
    long_text = "We compute step by step and find many numbers like 3 and 4 along the way."
    assert read_answer(long_text) is None
    assert read_answer("the final answer is $x^2$.") == "x^2"

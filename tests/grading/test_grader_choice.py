"""em_mc: the option letter, read as LLMRouter did, and from the other ways models write it."""

from __future__ import annotations

import pytest

from polyroute.data import Choices, Reference
from polyroute.grading import make_grader

REF = Reference("p", "arc_challenge", "em_mc", "C",
                Choices(("A", "B", "C", "D"), ("fur", "nose", "appetite", "colour")))


@pytest.mark.parametrize("answer", [
    "The answer is (C).", "(C)", "I think it's ( c ).", "**C**", "**C.** appetite",
    "Answer: C) the size of its appetite", "Answer: C", "The correct option is C.",
    "The answer is **C**", "**Answer:** C", "\\boxed{C}", "C", "C.", "[C]",
    "Let me think.\nC) the size of its appetite", "Option C is right.",
    "My friend(s) say A, but the answer is (C).", "(A) looks good, yet the answer is (C)",
])
def test_right_phrasings_score_one(answer: str) -> None:
    assert make_grader("em_mc").grade(answer, REF).score == 1.0


@pytest.mark.parametrize("answer", [
    "The answer is (A).", "**B**", "Answer: D) colour", "(C) is tempting, but the answer is (D).",
    "I don't know.", "The answer is a dog.", "A. fur\nB. nose\nC. appetite\nD. colour",
    "The answer is (E).", "",
])
def test_wrong_or_unreadable_answers_score_zero(answer: str) -> None:
    assert make_grader("em_mc").grade(answer, REF).score == 0.0


@pytest.mark.parametrize("answer, llmrouter", [
    ("The answer is (C).", 1.0), ("(c)", 1.0), ("**C**", 0.0), ("Answer: C", 0.0), ("C", 0.0),
    ("The answer is (A).", 0.0), ("(C) first, and my friend(s) agree", 0.0),
    ("(A) no, (C) yes", 1.0),
])
def test_strict_is_llmrouters_rule(answer: str, llmrouter: float) -> None:
    assert make_grader("em_mc", strict=True).grade(answer, REF).score == llmrouter


@pytest.mark.parametrize("answer", [
    "The answer is (C).", "(A)", "I pick (b) here", "(A) no, (C) yes", "**D** or rather (C)",
])
def test_default_agrees_with_llmrouter_where_an_option_is_parenthesised(answer: str) -> None:
    strict = make_grader("em_mc", strict=True).grade(answer, REF).score
    assert make_grader("em_mc").grade(answer, REF).score == strict

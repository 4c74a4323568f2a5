"""GSM8K: the final number, by value; strict mode is LLMRouter's last-number string rule."""

from __future__ import annotations

import pytest

from polyroute.data import Reference
from polyroute.grading import make_grader

SOLUTION = "Half is $30,000, so the full value was $60,000.\nThe cost was $20,000.\n#### 20,000"
REF = Reference("p", "gsm8k", "GSM8K", SOLUTION)


@pytest.mark.parametrize("answer", [
    "#### 20000", "The answer is $20,000.", "\\boxed{20000}", "20000.0", "$20,000$",
    "So Blake gave 20000 dollars.\n#### 20000\nI used 3 steps.", "Answer: **20,000**",
    "60000 / 3 = 20000", "The answer is 20000. Hope that helps, thanks",
])
def test_right_answers_score_one(answer: str) -> None:
    assert make_grader("GSM8K").grade(answer, REF).score == 1.0


@pytest.mark.parametrize("answer", [
    "#### 20001", "The answer is 2000.", "60000", "I cannot tell.", "#### 20000.5",
])
def test_wrong_answers_score_zero(answer: str) -> None:
    assert make_grader("GSM8K").grade(answer, REF).score == 0.0


@pytest.mark.parametrize("answer, truth, llmrouter", [
    ("#### 20000", SOLUTION, 1.0), ("The answer is $20,000.", SOLUTION, 1.0),
    ("20000.0", SOLUTION, 0.0),                        # the dot is deleted: "200000"
    ("It is 4.5", "#### 45", 1.0),                     # ... so 4.5 reads as 45
    ("The answer is 18. Hope that helps, thanks", "#### 18", 0.0),  # the "," is the last "number"
    ("#### 20000\nI used 3 steps.", SOLUTION, 0.0),    # the last number wins
    ("no digits", SOLUTION, 0.0),
])
def test_strict_is_llmrouters_rule(answer: str, truth: str, llmrouter: float) -> None:
    ref = Reference("p", "gsm8k", "GSM8K", truth)
    assert make_grader("GSM8K", strict=True).grade(answer, ref).score == llmrouter

"""f1_score (natural_qa, trivia_qa): LLMRouter's contained exact match, not token F1."""

from __future__ import annotations

import pytest

from polyroute.data import Reference
from polyroute.grading import make_grader
from polyroute.grading.qa import normalize_text

REF = Reference("p", "natural_qa", "f1_score", "Sammy Davis, Jr")


@pytest.mark.parametrize("answer", [
    "Sammy Davis, Jr", "sammy davis jr.",
    "The song \"I've Gotta Be Me\" was made famous by **Sammy Davis Jr.**, who recorded it "
    "in 1968.",
])
def test_a_right_answer_scores_one_however_wordy(answer: str) -> None:
    assert make_grader("f1_score").grade(answer, REF).score == 1.0


@pytest.mark.parametrize("answer", ["Frank Sinatra", "Sammy Davis", "", "I am not sure."])
def test_a_wrong_or_partial_answer_scores_zero(answer: str) -> None:
    assert make_grader("f1_score").grade(answer, REF).score == 0.0


def test_containment_is_on_normalised_text_as_llmrouter_did() -> None:
    assert normalize_text("The  Beatles!") == "beatles"
    year = Reference("p", "natural_qa", "f1_score", "2007")
    # LLMRouter's rule is a substring test: kept as recorded, quirk included.
    assert make_grader("f1_score").grade("In 12007 AD", year).score == 1.0

"""Short-answer QA (natural_qa, trivia_qa; metric ``f1_score``): is the reference in the answer?

LLMRouter names the metric ``f1_score``, but its evaluation overrides the metric for natural_qa and
trivia_qa with "contained exact match": normalise both texts (lower-case, drop ASCII punctuation,
drop the articles a/an/the, collapse whitespace) and score 1 if the normalised reference is a
**substring** of the normalised answer, else 0. Every bundled score on these tasks is 0 or 1, as
that rule gives; token F1 would have graded a right but wordy answer ("The answer is Sammy Davis
Jr., who recorded it in 1968.") well below its recorded 1.

The rule is kept as it is, substring and all ("2007" is found in "12007"): it is what the bundled
models were graded by, and it is already robust to how models phrase a right answer.
"""

from __future__ import annotations

import re
import string

from polyroute.data.references import Reference
from polyroute.grading.base import Grade, Grader, register

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_text(text: str) -> str:
    """SQuAD-style normalisation as LLMRouter applies it (punctuation first, then articles)."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def contains_reference(answer: str, reference: str) -> bool:
    """LLMRouter's contained exact match."""
    return normalize_text(reference) in normalize_text(answer)


@register("f1_score")
class ContainmentGrader(Grader):
    """1 if the normalised reference answer occurs in the normalised answer, else 0."""

    def _grade(self, answer: str, reference: Reference) -> Grade:
        truth = str(reference.ground_truth)
        hit = contains_reference(answer, truth)
        return Grade(float(hit), f"reference {'found' if hit else 'not found'}: "
                                 f"{normalize_text(truth)!r}")

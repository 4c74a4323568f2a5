"""Grade-school maths (``GSM8K``): does the answer's final number equal the reference's?

LLMRouter's rule, which recorded the bundled scores: the reference number is the text after the
last ``####`` with ``,``, ``$`` and ``.`` removed; the answer's number is the **last** run of
digits, dots and commas in the whole answer (skipping a lone ``.``), with the same characters
removed; the two strings must be equal. ``strict=True`` is that rule, unchanged — quirks included:
deleting the dot makes ``42.0`` read as ``420`` (wrong) and ``4.5`` equal to ``45`` (right), and a
comma after the answer ("18. Hope that helps, thanks") is read as the last "number".

The default reads the answer's *final* answer first — the last ``#### N``, else the last
``\\boxed{N}``, else a number right after "answer is" / "Answer:" — and only then falls back to
the last number, as LLMRouter does. Numbers are compared by value (``42.0`` = ``42`` =
``$42`` = ``42.00``, ``1,000`` = ``1000``), so it agrees with LLMRouter on an answer whose last
number is its final answer written as an integer, and differs where that rule misreads one.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from polyroute.data.references import Reference
from polyroute.grading.base import Grade, Grader, register

_LLMROUTER_NUMBER = re.compile(r"(-?[0-9.,]+)")
_NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?"
_MARKED = re.compile(r"####\s*\**\s*(" + _NUMBER + ")")
_BOXED = re.compile(r"\\boxed\{\s*(?:\\\$|\$)?\s*(" + _NUMBER + r")\s*(?:\\%|%)?\s*\}")
_STATED = re.compile(r"answer\s*(?:is|:)?\s*[:=]?\s*[*_$\\(]*\s*(" + _NUMBER + ")", re.IGNORECASE)
_ANY = re.compile(_NUMBER)


def _strip(text: str) -> str:
    return text.replace(",", "").replace("$", "").replace(".", "").strip()


def llmrouter_gsm8k(answer: str, ground_truth: str) -> bool:
    """LLMRouter's GSM8K rule (see the module docstring)."""
    truth = _strip(ground_truth.split("####")[-1])
    found = _LLMROUTER_NUMBER.findall(answer)
    if not found:
        return False
    final = found[0]
    for final in reversed(found):
        if final not in ("", "."):
            break
    return _strip(final) == truth


def to_number(text: str) -> Decimal | None:
    """A number as written in an answer ("$1,000", "42.0", "-3"), or None."""
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def reference_number(ground_truth: str) -> Decimal | None:
    """The number after the last ``####`` of a GSM8K solution (or the whole text if none)."""
    return to_number(ground_truth.split("####")[-1].strip())


def final_number(answer: str) -> Decimal | None:
    """The answer's final answer as a number, read as the module docstring says."""
    for pattern in (_MARKED, _BOXED, _STATED, _ANY):
        found = pattern.findall(answer)
        if found:
            return to_number(found[-1])
    return None


@register("GSM8K")
class GSM8KGrader(Grader):
    """1 if the answer's final number equals the reference number, else 0."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict

    def _grade(self, answer: str, reference: Reference) -> Grade:
        truth = str(reference.ground_truth)
        if self.strict:
            return Grade(float(llmrouter_gsm8k(answer, truth)), "LLMRouter's rule")
        want, got = reference_number(truth), final_number(answer)
        if got is None:
            return Grade(0.0, "no number found")
        return Grade(float(want is not None and got == want), f"read {got}")

"""Multiple choice (``em_mc``): which option letter did the answer pick?

LLMRouter's rule, which recorded the bundled scores: take the **last letter in parentheses**
(``(C)``, ``( c )``) anywhere in the answer, and score 1 if it is the reference label (case
ignored), else 0 — an answer with no parenthesised letter scores 0. The prompts asked for exactly
that ("You must put your final answer letter in a parenthesis").

``strict=True`` is that rule, unchanged. The default reads it the same way whenever the answer has
a parenthesised option letter, and only where it has none (so LLMRouter scored 0) falls back to
the other ways models write a choice: ``Answer: C``, ``The answer is **C**``, ``**C**``,
``\\boxed{C}``, a line ``C) text`` (if it is the only such line), or a bare ``C``. Two more
differences, both where LLMRouter could only score 0 by accident: a parenthesised letter that names
no option (``friend(s)``) is skipped rather than read as the choice, and so is one glued to a word.
Choice *texts* are never matched: on agentverse-logicgrid the options are house numbers, and
crediting "house 3" would grade far above the recorded scores.
"""

from __future__ import annotations

import re

from polyroute.data.references import Reference
from polyroute.grading.base import Grade, Grader, register

_LLMROUTER_PAREN = re.compile(r"\(\s*([a-zA-Z])\s*\)")
_PAREN = re.compile(r"(?<![A-Za-z])\(\s*([a-zA-Z])\s*\)")
_END = r"(?=[\s.,;:)\]*]|$)"
_STATED = re.compile(
    r"(?:answer|option|choice)\s*(?:is|would be|:)?\s*[:\-]?\s*(?:option\s+|choice\s+)?"
    r"[*_\[]*\s*([A-Z])" + _END + r"|\\boxed\{\s*(?:\\text\{)?\s*([A-Za-z])\s*\}",
    re.IGNORECASE)
_BOLD = re.compile(r"\*\*\s*\[?([A-Z])\]?\s*(?:[.):]|\*\*)")
_LINE = re.compile(r"^\s*[*_]*\[?([A-Z])\]?[*_]*\s*[.):](?:\s|$)", re.MULTILINE)
_BARE = re.compile(r"^[\s*_\[(]*([A-Z])[\s*_\]).]*$")


def llmrouter_choice(answer: str) -> str | None:
    """The letter LLMRouter's em_mc rule reads: the last parenthesised letter, upper-cased."""
    found = _LLMROUTER_PAREN.findall(answer)
    return found[-1].upper() if found else None


def read_choice(answer: str, labels: tuple[str, ...] | None) -> str | None:
    """The option letter an answer picks, read as the module docstring says (None if none)."""
    valid = {lab.upper() for lab in labels} if labels else None

    def ok(letter: str) -> bool:
        return valid is None or letter.upper() in valid

    parens = [m.upper() for m in _PAREN.findall(answer) if ok(m)]
    if parens:
        return parens[-1]
    stated = []
    for m in _STATED.finditer(answer):
        letter = m.group(1) or m.group(2)
        # "the answer is a dog": a lower-case letter counts only when set off like a label.
        if m.group(1) and letter.islower() and not re.match(r"\s*[.):*\]]", answer[m.end():]):
            continue
        if ok(letter):
            stated.append(letter.upper())
    if stated:
        return stated[-1]
    bold = [m for m in _BOLD.findall(answer) if ok(m)]
    if bold:
        return bold[-1]
    lines = {m for m in _LINE.findall(answer) if ok(m)}
    if len(lines) == 1:
        return lines.pop()
    bare = _BARE.match(answer.strip())
    if bare and ok(bare.group(1)):
        return bare.group(1)
    return None


@register("em_mc")
class ChoiceGrader(Grader):
    """1 if the answer picks the reference option, else 0 (see the module docstring)."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict

    def _grade(self, answer: str, reference: Reference) -> Grade:
        labels = reference.choices.labels if reference.choices else None
        letter = llmrouter_choice(answer) if self.strict else read_choice(answer, labels)
        if letter is None:
            return Grade(0.0, "no option letter found")
        return Grade(float(letter == str(reference.ground_truth).strip().upper()),
                     f"read option {letter}")

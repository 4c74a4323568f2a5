"""Concept coverage (``commongen_coverage``): which share of the given concepts does the answer use?

The reference is the comma-separated concept list; the score is (concepts used) / (concepts), which
is what the bundled scores are (fractions with the concept count as denominator: 1/24, 13/24, ...).
LLMRouter's code at the commit the data came from ships **no** coverage function, so the exact
matching rule behind the recorded scores cannot be checked; the two found in related code are a
whole-word match of each concept and a match after crude suffix stripping of whitespace-split
words (which misses "beach." for "beach").

The rule here: the answer is split into words (letters and apostrophes, case ignored) and a concept
counts as used when some word is the concept or one of its regular inflections — ``dog``/``dogs``,
``box``/``boxes``, ``city``/``cities``, ``jump``/``jumped``/``jumping``, ``dance``/``danced``/
``dancing``, ``run``/``running``, ``stop``/``stopped``. Irregular forms (``ran``, ``threw``) are
not credited. A multi-word concept must appear as that word sequence.
"""

from __future__ import annotations

import re

from polyroute.data.references import Reference
from polyroute.grading.base import Grade, Grader, register

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_VOWELS = set("aeiou")


def concepts_of(ground_truth: str) -> list[str]:
    """The concepts of a CommonGen reference, lower-cased, in order."""
    return [c.strip().lower() for c in ground_truth.split(",") if c.strip()]


def inflections(word: str) -> set[str]:
    """A word and its regular plural / verb forms."""
    forms = {word, word + "s", word + "es", word + "ed", word + "ing", word + "d"}
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    if word.endswith("e"):
        forms |= {word[:-1] + "ing"}
    if len(word) >= 3 and word[-1] not in _VOWELS | {"w", "x", "y"} and word[-2] in _VOWELS \
            and word[-3] not in _VOWELS:
        forms |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    return forms


def concept_used(concept: str, words: list[str]) -> bool:
    """Whether the word sequence of ``concept`` occurs in ``words`` (last word inflected)."""
    parts = _WORD.findall(concept)
    if not parts:
        return False
    head, last = parts[:-1], inflections(parts[-1])
    n = len(parts)
    return any(words[i:i + n - 1] == head and words[i + n - 1] in last
               for i in range(len(words) - n + 1))


def coverage(answer: str, ground_truth: str) -> tuple[float, list[str]]:
    """Share of concepts the answer uses, and the concepts it misses."""
    concepts = concepts_of(ground_truth)
    words = _WORD.findall(answer.lower())
    missing = [c for c in concepts if not concept_used(c, words)]
    return (1 - len(missing) / len(concepts) if concepts else 0.0), missing


@register("commongen_coverage")
class CoverageGrader(Grader):
    """Fraction of the reference concepts the answer uses."""

    def _grade(self, answer: str, reference: Reference) -> Grade:
        score, missing = coverage(answer, str(reference.ground_truth))
        return Grade(score, f"missing {len(missing)}: {', '.join(missing)}" if missing
                     else "all concepts used")

"""Competition maths (``MATH``; the math and agentverse-mgsm tasks): the answer's ``\\boxed{}``
content, normalised, against the reference's.

LLMRouter's rule, which recorded the bundled scores (it is the Hendrycks MATH normalisation as
lm-evaluation-harness has it): the reference answer is the content of the last ``\\boxed{...}`` of
the reference solution (or the whole reference if it has none: agentverse-mgsm's are bare numbers);
the model's answer is the content of its last ``\\boxed{...}`` — **no box, score 0** — and the two
are equal if their normalised forms are equal. Normalising drops line breaks, ``\\!``, ``\\left`` /
``\\right``, degree marks, ``\\$``, ``\\%``, a unit after ``\\text{ `` and all spaces; turns
``tfrac`` / ``dfrac`` into ``frac``; writes ``\\frac12`` as ``\\frac{1}{2}``, ``\\sqrt3`` as
``\\sqrt{3}``, ``1/2`` as ``\\frac{1}{2}`` and ``0.5`` as ``\\frac{1}{2}``; adds the 0 of ``.5``;
and drops a short ``x =`` in front. Where that normalisation fails (a second ``\\text{ ``, a ``/``
between non-integers) the raw strings are compared. ``strict=True`` is that rule, unchanged.

The default agrees with it whenever the answer has a box and the normalised forms are equal, and
adds: an answer without a box is read from ``#### X``, "the (final) answer is X" / "Answer: X", or
a short bare answer (``42``, ``$\\frac{1}{2}$``); ``\\fbox`` counts as a box; and two answers that
still differ are equal if they have the same value as numbers (``42.0`` = ``42``, ``1,000`` =
``1000``, ``\\frac{3}{4}`` = ``0.75``) or once ``\\text{}`` / ``\\mathrm{}`` wrappers, ``$`` and
thin spaces are dropped.
"""

from __future__ import annotations

import re
from fractions import Fraction

from polyroute.data.references import Reference
from polyroute.grading.base import Grade, Grader, register


# -- LLMRouter's rule ----------------------------------------------------------------------------
def llmrouter_last_boxed(text: str) -> str | None:
    """The content of the last box as LLMRouter reads it, or None (also where its reader fails)."""
    if "\\boxed " in text:
        return text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        return None  # LLMRouter finds an \fbox here but then fails to unwrap it: no answer
    inner = _braced_after(text, start)
    return inner


def _braced_after(text: str, start: int) -> str | None:
    """Content of the first balanced ``{...}`` at or after ``start`` (None if never closed)."""
    depth, open_at = 0, None
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
            if open_at is None:
                open_at = i
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:i] if open_at is not None else None
    return None


def normalize_math(text: str) -> str:
    """The Hendrycks normalisation (see the module docstring). Raises ValueError where
    LLMRouter's version raises, so that :func:`llmrouter_equiv` can fall back the same way."""
    s = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "")
    if "\\text{ " in s:
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            raise ValueError("more than one unit")
        s = parts[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = _fix_sqrt(s).replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_slash(s)


def _fix_sqrt(s: str) -> str:
    head, *rest = s.split("\\sqrt")
    out = head
    for part in rest:
        if not part:
            raise ValueError("\\sqrt with nothing after it")
        out += "\\sqrt" + (part if part[0] == "{" else "{" + part[0] + "}" + part[1:])
    return out


def _fix_fracs(s: str) -> str:
    head, *rest = s.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if not part:
            raise ValueError("\\frac with nothing after it")
        if part[0] == "{":
            out += part
            continue
        if len(part) < 2:
            return s
        a, b, tail = part[0], part[1], part[2:]
        out += "{" + a + "}" + ("{" + b + "}" + tail if b != "{" else b + tail)
    return out


def _fix_slash(s: str) -> str:
    parts = s.split("/")
    if len(parts) != 2:
        return s
    a, b = int(parts[0]), int(parts[1])  # ValueError for non-integers, as in LLMRouter
    return "\\frac{" + str(a) + "}{" + str(b) + "}" if s == f"{a}/{b}" else s


def llmrouter_equiv(a: str, b: str) -> bool:
    """Equal after normalisation; the raw strings compared where normalisation fails."""
    try:
        return normalize_math(a) == normalize_math(b)
    except (ValueError, IndexError):
        return a == b


def reference_answer(ground_truth: str) -> str:
    """The final answer in a MATH reference: its last box's content, or the whole text."""
    inner = llmrouter_last_boxed(ground_truth)
    return inner if inner is not None else ground_truth


# -- the default reading -------------------------------------------------------------------------
_MARKED = re.compile(r"####\s*(.+)")
_STATED = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*:?\s*(.+)", re.IGNORECASE)
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def last_box(text: str) -> str | None:
    """The content of the last ``\\boxed{}`` / ``\\fbox{}`` (or ``\\boxed x``) in ``text``."""
    found = list(re.finditer(r"\\(?:boxed|fbox)", text))
    if not found:
        return None
    rest = text[found[-1].end():]
    if rest.lstrip().startswith("{"):
        return _braced_after(rest, 0)
    bare = re.match(r"\s+([^\s$]+)", rest)
    return bare.group(1) if bare else None


def read_answer(answer: str) -> str | None:
    """The model's final answer: its last box, else a marked or stated answer, else a short
    bare answer; None if none of these is there."""
    boxed = last_box(answer)
    if boxed is not None:
        return boxed
    for pattern in (_MARKED, _STATED):
        found = pattern.findall(answer)
        if found:
            return _clean_statement(found[-1])
    bare = answer.strip()
    if bare and len(bare) <= 40 and "\n" not in bare:
        return _clean_statement(bare)
    return None


def _clean_statement(text: str) -> str:
    """'$\\frac{1}{2}$.' → '\\frac{1}{2}': the math of a one-line statement of the answer."""
    text = text.strip().strip("*").strip()
    math = re.findall(r"\$+([^$]+)\$+", text)
    if math:
        return math[0].strip()
    return text.rstrip(".").strip()


def _loose(s: str) -> str:
    s = _WRAPPERS.sub(r"\1", s)
    s = s.replace("$", "").replace("\\,", "").replace("\\ ", "").replace("{,}", ",")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    return s.replace(" ", "").rstrip(".")


def _value(s: str) -> Fraction | None:
    s = _loose(s)
    frac = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s)
    try:
        if frac:
            value = Fraction(int(frac.group(2)), int(frac.group(3)))
            return -value if frac.group(1) else value
        if re.fullmatch(r"-?\d+(?:\.\d+)?(?:/\d+)?", s):
            return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def math_equiv(a: str, b: str) -> bool:
    """LLMRouter's equivalence, or equal once loosened, or equal as numbers."""
    if llmrouter_equiv(a, b):
        return True
    la, lb = _loose(a), _loose(b)
    if la and (la == lb or llmrouter_equiv(la, lb)):
        return True
    va, vb = _value(a), _value(b)
    return va is not None and va == vb


@register("MATH")
class MathGrader(Grader):
    """1 if the answer's final answer is equivalent to the reference's, else 0."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict

    def _grade(self, answer: str, reference: Reference) -> Grade:
        truth = reference_answer(str(reference.ground_truth))
        got = llmrouter_last_boxed(answer) if self.strict else read_answer(answer)
        if got is None:
            return Grade(0.0, "no boxed answer" if self.strict else "no final answer found")
        same = llmrouter_equiv(got, truth) if self.strict else math_equiv(got, truth)
        return Grade(float(same), f"read {got!r}, reference {truth!r}")

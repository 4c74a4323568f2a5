"""The one contract every guard keeps: ``check(text, embedding) -> Verdict``.

Why so small: the gateway's request path runs guards as stages (input guards after signals,
output guards after serving). A stage needs only to hand a guard the text and the embedding the
router already computed, and to act on one value back. Guards are pure functions of their inputs
(plus loaded, frozen state), so the same guard serves the gateway, the ``polyroute guard`` CLI and
the benchmark, and tests call it directly.

Actions, in increasing severity (``combine`` keeps the most severe):

* ``allow``    — nothing found (or nothing the config acts on);
* ``flag``     — let it through, but write the finding in the request record;
* ``restrict`` — serve only from the configured safe set of models;
* ``block``    — refuse the request.

Redaction is not an action of its own: a PII guard that redacts returns ``allow`` (or ``flag``)
with ``redacted`` set, and the stage forwards the redacted text instead of the original.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Action = Literal["allow", "flag", "restrict", "block"]
#: Order of severity; the most severe action of several guards wins.
SEVERITY: Mapping[str, int] = {"allow": 0, "flag": 1, "restrict": 2, "block": 3}


@dataclass(frozen=True)
class Span:
    """A finding at ``text[start:end]`` (Python string offsets, i.e. code points)."""

    start: int
    end: int
    type: str
    score: float = 1.0

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "type": self.type, "score": self.score}


@dataclass(frozen=True)
class Verdict:
    """What a guard (or several, combined) concluded about one text.

    ``scores`` maps detector name to a number in [0, 1] (a probability for the classifier, 1.0 or
    0.0 for rule hits). ``redacted`` is the text with PII replaced by placeholders, and
    ``placeholders`` maps each placeholder back to the original value (for :func:`restore`);
    both are ``None`` when the guard does not redact.
    """

    action: Action = "allow"
    scores: Mapping[str, float] = field(default_factory=dict)
    spans: tuple[Span, ...] = ()
    reason: str = ""
    redacted: str | None = None
    placeholders: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.action not in SEVERITY:
            raise ValueError(f"unknown action {self.action!r}; expected one of {list(SEVERITY)}")

    def to_dict(self) -> dict:
        """The JSON shape ``polyroute guard`` prints and request records store."""
        out: dict = {"action": self.action, "scores": dict(self.scores),
                     "spans": [s.to_dict() for s in self.spans], "reason": self.reason}
        if self.redacted is not None:
            out["redacted"] = self.redacted
            out["placeholders"] = dict(self.placeholders or {})
        return out


@runtime_checkable
class Guard(Protocol):
    """A guard: a ``name`` (the prefix of its score keys), a pure ``check`` and its batch
    form ``check_many``."""

    name: str

    def check(self, text: str, embedding: np.ndarray | None = None) -> Verdict:
        """Judge ``text``. ``embedding`` is the router's embedding of the same text, if any;
        guards that use one must not compute a second (see ``JailbreakGuard``)."""
        ...

    def check_many(self, texts: Sequence[str],
                   embeddings: np.ndarray | None = None) -> list[Verdict]:
        """The batch form (one encoder call, one matrix product, where a guard has either)."""
        ...


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """One verdict from several: most severe action, all scores and spans, reasons joined, and
    the redaction of whichever guard redacted (at most one guard in a chain redacts)."""
    verdicts = list(verdicts)
    if not verdicts:
        return Verdict()
    action = max((v.action for v in verdicts), key=SEVERITY.__getitem__)
    scores: dict[str, float] = {}
    spans: list[Span] = []
    for v in verdicts:
        scores.update(v.scores)
        spans.extend(v.spans)
    redacting = [v for v in verdicts if v.redacted is not None]
    if len(redacting) > 1:
        raise ValueError("more than one guard redacted the same text; chain them instead")
    reason = "; ".join(v.reason for v in verdicts if v.reason)
    return Verdict(action=action, scores=scores, spans=tuple(sorted(spans, key=_span_key)),
                   reason=reason,
                   redacted=redacting[0].redacted if redacting else None,
                   placeholders=redacting[0].placeholders if redacting else None)


def _span_key(span: Span) -> tuple[int, int, str]:
    return (span.start, span.end, span.type)

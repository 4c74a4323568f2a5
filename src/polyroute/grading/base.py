"""The grader contract: ``grade(answer, reference) -> Grade``, and the registry by metric name.

A grader turns one model answer into a score in [0, 1] (or *ungraded*, with the reason) so that a
model the bundled data has never seen can be scored on the calibration prompts by the same rule
the bundled models were scored with. Ungraded is not 0: a prompt whose reference cannot be used (or
whose tests do not ship) must drop out of a comparison, not count against the model.

The base class does the checking (usable reference, score range), so each grader writes only
``_grade``. Graders are looked up by the metric name a reference carries (LLMRouter's names:
``em_mc``, ``f1_score``, ``GSM8K``, ``MATH``, ``commongen_coverage``, ``code_eval``) plus
``judge`` for prompts without references.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from polyroute.data.references import Reference
from polyroute.errors import ConfigError, DataError


@dataclass(frozen=True)
class Grade:
    """One answer's grade. ``score`` None means ungraded; ``detail`` says what was read from the
    answer (or why it was not graded); ``cost`` is the dollars grading spent (the judge's calls)."""

    score: float | None
    detail: str = ""
    cost: float = 0.0

    @property
    def graded(self) -> bool:
        return self.score is not None

    @classmethod
    def ungraded(cls, reason: str, cost: float = 0.0) -> Grade:
        return cls(None, reason, cost)


class Grader(ABC):
    """Scores answers for one metric. Subclasses implement :meth:`_grade`."""

    #: The metric name this grader is registered under (set by :func:`register`).
    metric: ClassVar[str] = ""
    #: False for graders that can score an answer from the prompt alone (the judge).
    needs_reference: ClassVar[bool] = True

    def grade(self, answer: str, reference: Reference) -> Grade:
        """Score ``answer`` against ``reference``: in [0, 1], or ungraded with the reason."""
        if self.needs_reference and not reference.usable:
            return Grade.ungraded(f"reference not usable: {reference.note or 'no reason given'}")
        grade = self._grade(answer or "", reference)
        if grade.score is not None and not (math.isfinite(grade.score) and 0 <= grade.score <= 1):
            raise ValueError(f"{type(self).__name__} produced score {grade.score!r} outside [0, 1]")
        return grade

    @abstractmethod
    def _grade(self, answer: str, reference: Reference) -> Grade:
        """Score a (non-None) answer against a usable reference."""


_REGISTRY: dict[str, type[Grader]] = {}


def register(metric: str) -> Callable[[type[Grader]], type[Grader]]:
    """Class decorator: the grader for references whose ``metric`` is ``metric``."""

    def wrap(cls: type[Grader]) -> type[Grader]:
        if metric in _REGISTRY and _REGISTRY[metric] is not cls:
            raise ValueError(f"grader metric {metric!r} registered twice")
        cls.metric = metric
        _REGISTRY[metric] = cls
        return cls

    return wrap


def available_metrics() -> list[str]:
    """Metric names a grader is registered for, sorted."""
    return sorted(_REGISTRY)


def make_grader(metric: str, **params: Any) -> Grader:
    """The grader for ``metric``; unknown metrics and parameters are reported by name."""
    if metric not in _REGISTRY:
        raise DataError(f"no grader for metric {metric!r}; graders exist for: "
                        f"{', '.join(available_metrics())}")
    try:
        return _REGISTRY[metric](**params)
    except TypeError as exc:
        raise ConfigError(f"grader {metric!r}: {exc}") from None

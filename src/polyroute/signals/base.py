"""What a signal is, what it reads, and the per-request memo of computed values.

Why a small interface: the rules (``signals/rules.py``) and the gateway's signal stage only ask a
signal for its ``name``, its ``kind`` (which comparisons make sense on it) and whether it needs
the router's embedding; a new signal is one class and one registry entry, never an edit of the
rule evaluator. A value of ``None`` means "unknown for this request" (no metadata field of that
name, no estimates): it matches no comparison, so ``not`` is the way to act on its absence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from polyroute.routers import Estimates

#: Value kinds: what a signal returns (``set`` = a frozenset of strings).
BOOL, NUMBER, STRING, SET = "bool", "number", "string", "set"
KINDS = (BOOL, NUMBER, STRING, SET)

#: What a signal needs beyond the request itself: nothing (cheap, known right after parsing),
#: or the router's analysis of the routing text (its embedding and estimates).
REQUEST, ANALYSIS = "request", "analysis"


@dataclass
class SignalInputs:
    """Everything a signal may read about one request.

    ``embedding`` and ``estimates`` are the router's own (one row: the routing text's embedding,
    the servable models' estimates); they are filled in once the decider has analysed the text,
    and stay None for signals computed before that.
    """

    body: Mapping[str, Any]
    text: str
    key_id: str | None = None
    key_tags: frozenset[str] = frozenset()
    headers: Mapping[str, str] = field(default_factory=dict)
    embedding: np.ndarray | None = None
    estimates: Estimates | None = None
    #: Intermediate results several signals share (e.g. the similarities to every domain),
    #: computed by the first signal that needs them.
    shared: dict[str, Any] = field(default_factory=dict)


class Signal(Protocol):
    """One fact about a request, computed once per request and cheap (well under 1 ms)."""

    name: str
    kind: str
    #: :data:`REQUEST` or :data:`ANALYSIS`.
    needs: str

    def compute(self, inputs: SignalInputs) -> Any:
        """The value for this request (of :attr:`kind`), or None if unknown."""
        ...


class SignalValues:
    """A request's signal values, each computed on first use and then remembered."""

    def __init__(self, signals: Mapping[str, Signal], inputs: SignalInputs) -> None:
        self._signals = signals
        self.inputs = inputs
        self._values: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self._values:
            signal = self._signals[name]
            if signal.needs == ANALYSIS and self.inputs.embedding is None:
                raise RuntimeError(f"signal {name!r} needs the router's analysis, which has not "
                                   f"been made for this request yet")
            self._values[name] = signal.compute(self.inputs)
        return self._values[name]

    @property
    def analysed(self) -> bool:
        return self.inputs.embedding is not None

    def computed(self) -> dict[str, Any]:
        """The values computed so far (for logs and tests)."""
        return dict(self._values)

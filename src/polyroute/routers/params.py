"""Declared hyper-parameter constraints, in scikit-learn's manner (``_parameter_constraints``).

A router lists, for each constructor parameter, what values it accepts; :class:`Router` checks
them when the router is built and again at ``fit``. Declaring instead of checking by hand keeps
the messages uniform ("k must be an integer >= 1 or None, got -5") and lets one shared test make
sure no parameter goes unchecked.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any


class Constraint(ABC):
    """What one parameter accepts. Subclasses define :meth:`accepts` and :meth:`describe`."""

    @abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is allowed."""

    @abstractmethod
    def describe(self) -> str:
        """What is allowed, in words (``an integer >= 1``)."""

    def problem(self, param: str, value: Any) -> str | None:
        """None if ``value`` is acceptable, else a one-line message naming ``param``."""
        if self.accepts(value):
            return None
        return f"{param} must be {self.describe()}, got {value!r}"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


class Interval(Constraint):
    """An integer (``kind=int``) or a finite number (``kind=float``) between ``low`` and ``high``;
    ``closed`` says which ends belong to it (``both``, ``left``, ``right``, ``neither``)."""

    def __init__(self, kind: type, low: float | None = None, high: float | None = None, *,
                 closed: str = "both", none: bool = False) -> None:
        if kind not in (int, float) or closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"bad Interval({kind!r}, closed={closed!r})")
        self.kind, self.low, self.high, self.closed, self.none = kind, low, high, closed, none

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        left_closed = self.closed in ("both", "left")
        right_closed = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or value == self.low and not left_closed):
            return False
        return not (self.high is not None
                    and (value > self.high or value == self.high and not right_closed))

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        left_closed = self.closed in ("both", "left")
        right_closed = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            what += (f" in {'[' if left_closed else '('}{self.low:g}, {self.high:g}"
                     f"{']' if right_closed else ')'}")
        elif self.low is not None:
            what += f" {'>=' if left_closed else '>'} {self.low:g}"
        elif self.high is not None:
            what += f" {'<=' if right_closed else '<'} {self.high:g}"
        return what + (" or None" if self.none else "")


class Options(Constraint):
    """One of a fixed set of values (strings, usually)."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def accepts(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))

    def problem(self, param: str, value: Any) -> str | None:
        if self.accepts(value):
            return None
        return f"unknown {param} {value!r}; choose from: {', '.join(map(str, self.values))}"


class Items(Constraint):
    """A list or tuple (JSON has no tuples) of at least ``min_len`` values each meeting ``each``."""

    def __init__(self, each: Constraint, min_len: int = 1) -> None:
        self.each, self.min_len = each, min_len

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, (list, tuple)) and len(value) >= self.min_len
                and all(self.each.accepts(v) for v in value))

    def describe(self) -> str:
        size = "a non-empty list" if self.min_len == 1 else f"a list of >= {self.min_len} values"
        return f"{size}, each {self.each.describe()}"


class Instance(Constraint):
    """A value of one of ``types`` (or None when ``none``), described as ``what``."""

    def __init__(self, *types: type, what: str, none: bool = False) -> None:
        self.types, self.what, self.none = types, what, none

    def accepts(self, value: Any) -> bool:
        return (value is None and self.none) or isinstance(value, self.types)

    def describe(self) -> str:
        return self.what + (" or None" if self.none else "")


#: ``random_state``: what ``numpy.random.default_rng`` (and scikit-learn) accept as a seed.
RANDOM_STATE = Interval(int, 0, none=True)
POSITIVE_INT = Interval(int, 1)
NON_NEGATIVE = Interval(float, 0)
POSITIVE = Interval(float, 0, closed="neither")
#: A share of something: in [0, 1).
SHARE = Interval(float, 0, 1, closed="left")
UNIT = Interval(float, 0, 1)


def check_params(params: Mapping[str, Any], constraints: Mapping[str, Constraint]) -> str | None:
    """The first problem with ``params`` under ``constraints`` (parameters without a declared
    constraint pass), or None."""
    for name, value in params.items():
        constraint = constraints.get(name)
        message = constraint.problem(name, value) if constraint is not None else None
        if message is not None:
            return message
    return None


__all__: Sequence[str] = ["NON_NEGATIVE", "POSITIVE", "POSITIVE_INT", "RANDOM_STATE", "SHARE",
                          "UNIT", "Constraint", "Instance", "Interval", "Items", "Options",
                          "check_params"]

"""Decision rules compiled once from the config and evaluated against a request's signals.

A rule's condition is turned into a tree of small closures at start (regular expressions
compiled, lists turned into sets), so evaluating it per request is a few dictionary lookups.
Each rule knows whether it reads a signal that needs the router's analysis (``late``): the
gateway evaluates rules in order and obtains the analysis only when it reaches the first such
rule, so a request decided by cheap rules never waits for an embedding.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from polyroute.signals.base import ANALYSIS, SignalValues
from polyroute.signals.config import Action, Condition, RuleConfig, SignalsConfig
from polyroute.signals.registry import catalog, needs_of_name

Test = Callable[[SignalValues], bool]

_ORDER = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _leaf(signal: str, op: str, value: Any) -> Test:
    """One comparison; an unknown value (None) never matches."""
    if op in _ORDER:
        cmp, bound = _ORDER[op], float(value)
        return lambda v: (x := v.get(signal)) is not None and cmp(x, bound)
    if op == "matches":
        pattern = re.compile(value)
        return lambda v: (x := v.get(signal)) is not None and pattern.search(x) is not None
    if op == "in":
        allowed = frozenset(value)

        def is_in(v: SignalValues) -> bool:
            x = v.get(signal)
            if x is None:
                return False
            return bool(x & allowed) if isinstance(x, frozenset) else x in allowed
        return is_in
    if op == "contains":
        return lambda v: (x := v.get(signal)) is not None and value in x
    want = frozenset(value) if isinstance(value, (list, tuple)) else value
    if op == "eq":
        return lambda v: (x := v.get(signal)) is not None and x == want
    if op == "ne":
        return lambda v: (x := v.get(signal)) is not None and x != want
    raise ValueError(f"unknown op {op!r}")


def compile_condition(cond: Condition) -> Test:
    if cond.all is not None:
        parts = [compile_condition(c) for c in cond.all]
        return lambda v: all(p(v) for p in parts)
    if cond.any is not None:
        parts = [compile_condition(c) for c in cond.any]
        return lambda v: any(p(v) for p in parts)
    if cond.not_ is not None:
        inner = compile_condition(cond.not_)
        return lambda v: not inner(v)
    assert cond.signal is not None
    return _leaf(cond.signal, cond.op, cond.value)


@dataclass(frozen=True)
class Rule:
    name: str
    test: Test
    action: Action
    #: Reads a signal that needs the router's analysis (embedding, estimates).
    late: bool
    #: The signals it reads.
    reads: tuple[str, ...]

    def holds(self, values: SignalValues) -> bool:
        return self.test(values)


def compile_rules(rules: Sequence[RuleConfig], signals: SignalsConfig) -> tuple[Rule, ...]:
    """The config's rules, ready to evaluate (the config has checked them already)."""
    known = catalog(signals)
    out = []
    for r in rules:
        reads = tuple(dict.fromkeys(r.when.signals()))
        late = any(needs_of_name(s, known) == ANALYSIS for s in reads)
        out.append(Rule(r.name, compile_condition(r.when), r.then, late, reads))
    return tuple(out)


def first_match(rules: Sequence[Rule], values: SignalValues) -> Rule | None:
    """The first rule that holds; only for rules whose signals ``values`` can compute."""
    for rule in rules:
        if rule.holds(values):
            return rule
    return None

"""The config of signals, decision rules and named routes (sections of ``GatewayConfig``).

Why here and not in ``polyroute.config``: what may be written in a rule depends on the signal
registry (``signals/registry.py``), which these models check against; the gateway config only
includes the sections and asks :func:`check_rules` about the names it alone knows (backends,
profiles). Every problem is reported on its own line, named by where it is
(``rules[2].when.any[0].signal: unknown signal 'foo'; known: ...``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polyroute.plugins import PluginSpec

#: Comparisons a rule's leaf may make.
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "matches")
Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "matches"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{what} {value!r} must start with a letter or digit and contain only "
                         f"letters, digits, '-' and '_'")
    return value


def _threshold(v: float) -> float:
    if not math.isfinite(v) or not -1 <= v <= 1:
        raise ValueError("must be a cosine similarity between -1 and 1")
    return v


class KeywordConfig(_Section):
    """Signal ``keyword.<name>``: true when the routing text contains one of ``words`` (as a
    whole word or phrase) or matches one of ``patterns`` (regular expressions)."""

    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    case_sensitive: bool = False

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"pattern {p!r} is not a valid regular expression ({exc})"
                                 ) from None
        return v

    @model_validator(mode="after")
    def _something(self) -> KeywordConfig:
        if not self.words and not self.patterns:
            raise ValueError("give words or patterns (or both)")
        return self


class DomainConfig(_Section):
    """A domain the ``domain`` signal can name: prompts like ``examples`` (similarity at least
    ``threshold`` to one of them, in the router's embedding space)."""

    examples: tuple[str, ...] = Field(min_length=1)
    threshold: float = 0.5

    _t = field_validator("threshold")(classmethod(lambda cls, v: _threshold(v)))


class SignalsConfig(_Section):
    domains: dict[str, DomainConfig] = Field(default_factory=dict)
    keywords: dict[str, KeywordConfig] = Field(default_factory=dict)
    #: Your own signals: ``[{use: "my_module:MySignal", options: {...}}]`` or an entry point of
    #: the group ``polyroute.signals`` (see ``polyroute.plugins``).
    plugins: tuple[PluginSpec, ...] = ()

    @field_validator("domains", "keywords")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            _name(name, "name")
        return v


class Condition(_Section):
    """``all: [...]``, ``any: [...]``, ``not: {...}``, or a leaf ``{signal, op, value}``.

    A leaf without ``op`` compares with ``eq``; without ``value`` it tests a boolean signal for
    true (``{signal: has_tools}``).
    """

    all: tuple[Condition, ...] | None = None
    any: tuple[Condition, ...] | None = None
    not_: Condition | None = Field(None, alias="not")
    signal: str | None = None
    op: Op = "eq"
    value: Any = True

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [k for k, v in (("all", self.all), ("any", self.any), ("not", self.not_),
                                ("signal", self.signal)) if v is not None]
        if len(forms) != 1:
            raise ValueError("a condition is exactly one of all: [...], any: [...], not: {...} "
                             f"or a leaf {{signal, op, value}} (got {', '.join(forms) or 'none'})")
        if self.signal is None and self.model_fields_set & {"op", "value"}:
            raise ValueError("op and value belong to a leaf (one with signal)")
        for key in ("all", "any"):
            if getattr(self, key) == ():
                raise ValueError(f"{key}: empty list")
        return self

    def signals(self) -> list[str]:
        """Every signal the condition reads."""
        if self.signal is not None:
            return [self.signal]
        children = self.all or self.any or ((self.not_,) if self.not_ is not None else ())
        return [s for c in children for s in c.signals()]


class Action(_Section):
    """What a rule does when it fires: exactly one of these."""

    #: Route the request with this profile instead.
    profile: str | None = None
    #: Restrict the candidates to these backends (the router still chooses among them).
    models: tuple[str, ...] | None = Field(None, min_length=1)
    #: Serve this backend, without routing.
    pin: str | None = None
    #: Refuse the request (403) with this message.
    block: str | None = None

    @field_validator("block")
    @classmethod
    def _header_safe(cls, v: str | None) -> str | None:
        # The message is also sent in a response header (x-polyroute-ended-by).
        if v is not None and (not v.strip() or not v.isprintable() or not v.isascii()):
            raise ValueError("the block message must be non-empty printable ASCII on one line")
        return v

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [k for k in ("profile", "models", "pin", "block") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of profile, models, pin or block "
                             f"(got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("profile", "models", "pin", "block")
                    if getattr(self, k) is not None)


class RuleConfig(_Section):
    """``when`` the condition holds, ``then`` act; rules are tried in order, the first that
    holds acts."""

    name: str
    when: Condition
    then: Action

    _n = field_validator("name")(classmethod(lambda cls, v: _name(v, "rule name")))


class NamedRouteConfig(_Section):
    """A route in the style of Arch-Router: prompts close to its ``description`` or one of its
    ``examples`` (similarity at least ``threshold``) are routed among its ``models`` only."""

    name: str
    description: str = Field(min_length=1)
    examples: tuple[str, ...] = ()
    models: tuple[str, ...] = Field(min_length=1)
    threshold: float = 0.5

    _n = field_validator("name")(classmethod(lambda cls, v: _name(v, "route name")))
    _t = field_validator("threshold")(classmethod(lambda cls, v: _threshold(v)))

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.description, *self.examples)


def check_rules(rules: Sequence[RuleConfig], routes: Sequence[NamedRouteConfig],
                signals: SignalsConfig, backends: Sequence[str],
                profiles: Sequence[str]) -> list[tuple[str, str]]:
    """``(where, what)`` per problem in ``rules`` and ``routes`` (empty if none): unknown
    signals, a comparison the signal's kind cannot make, unknown backends or profiles, repeated
    names. ``where`` is the dotted key (``rules[2].when.any[0].signal``)."""
    from polyroute.signals.registry import catalog

    known = catalog(signals)
    problems: list[str] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if rule.name in seen:
            problems.append(f"{where}.name: another rule is also named {rule.name!r}")
        seen.add(rule.name)
        problems += _check_condition(rule.when, f"{where}.when", known)
        action = rule.then
        if action.profile is not None and action.profile not in profiles:
            problems.append(f"{where}.then.profile: unknown profile {action.profile!r}; "
                            f"known: {', '.join(profiles)}")
        for ref in [action.pin] if action.pin is not None else []:
            if ref not in backends:
                problems.append(f"{where}.then.pin: unknown model {ref!r}; configured "
                                f"backends: {', '.join(backends)}")
        unknown = [m for m in action.models or () if m not in backends]
        if unknown:
            problems.append(f"{where}.then.models: unknown model(s) {', '.join(unknown)}; "
                            f"configured backends: {', '.join(backends)}")
    names: set[str] = set()
    for i, route in enumerate(routes):
        if route.name in names:
            problems.append(f"routes[{i}].name: another route is also named {route.name!r}")
        names.add(route.name)
        unknown = [m for m in route.models if m not in backends]
        if unknown:
            problems.append(f"routes[{i}].models: unknown model(s) {', '.join(unknown)}; "
                            f"configured backends: {', '.join(backends)}")
    # Each problem was written "where: what"; the dotted keys hold no ": ".
    return [(where, what) for where, what in (p.split(": ", 1) for p in problems)]


_NUMERIC = ("lt", "le", "gt", "ge")


def _check_condition(cond: Condition, where: str, known: dict[str, Any]) -> list[str]:
    from polyroute.signals.base import BOOL, NUMBER, SET, STRING
    from polyroute.signals.registry import kind_of_name

    if cond.all is not None or cond.any is not None:
        key = "all" if cond.all is not None else "any"
        children = cond.all if cond.all is not None else cond.any
        assert children is not None
        return [p for j, c in enumerate(children)
                for p in _check_condition(c, f"{where}.{key}[{j}]", known)]
    if cond.not_ is not None:
        return _check_condition(cond.not_, f"{where}.not", known)
    assert cond.signal is not None
    kind = kind_of_name(cond.signal, known)
    if kind is None:
        return [f"{where}.signal: unknown signal {cond.signal!r}; known: "
                f"{', '.join(sorted(known))}, metadata.<field>"]
    op, value = cond.op, cond.value
    bad = f"{where}.op: {op!r} cannot compare {kind} signal {cond.signal!r}"
    if op in _NUMERIC and kind != NUMBER:
        return [f"{bad} (it compares numbers)"]
    if op == "matches" and kind != STRING:
        return [f"{bad} (it matches strings)"]
    if op == "contains" and kind not in (STRING, SET):
        return [f"{bad} (it looks inside strings and sets)"]
    if op == "matches":
        try:
            re.compile(str(value))
        except re.error as exc:
            return [f"{where}.value: {value!r} is not a valid regular expression ({exc})"]
    if op == "in":
        if not isinstance(value, (list, tuple)) or not value:
            return [f"{where}.value: 'in' needs a non-empty list of values"]
        items = list(value)
    elif kind == SET and op in ("eq", "ne"):
        if not isinstance(value, (list, tuple)):
            return [f"{where}.value: a set signal compares with a list of strings"]
        items = list(value)
    else:
        items = [value]
    want = {BOOL: (bool,), NUMBER: (int, float), STRING: (str,), SET: (str,)}[kind]
    wrong = [v for v in items if not isinstance(v, want) or (kind == NUMBER and
                                                            isinstance(v, bool))]
    if op in ("contains", "matches"):
        wrong = [v for v in items if not isinstance(v, str)]
    if wrong:
        expected = "string" if op in ("contains", "matches") else kind
        return [f"{where}.value: {wrong[0]!r} is not a {expected} (signal {cond.signal!r} is a "
                f"{kind})"]
    return []

"""Signals (cheap facts about a request) and the decision rules and named routes built on them.

A library with no HTTP in it: the gateway's ``signals`` and ``rules`` stages fill a
:class:`SignalInputs` from the request, evaluate the compiled :class:`Rule` list in order, and
act on the first that holds; named routes compare the router's embedding of the request with
their descriptions' (:class:`ExampleIndex`).
"""

from polyroute.signals.base import (
    ANALYSIS,
    BOOL,
    KINDS,
    NUMBER,
    REQUEST,
    SET,
    STRING,
    Signal,
    SignalInputs,
    SignalValues,
)
from polyroute.signals.config import (
    Action,
    Condition,
    DomainConfig,
    KeywordConfig,
    NamedRouteConfig,
    RuleConfig,
    SignalsConfig,
    check_rules,
)
from polyroute.signals.registry import BUILTINS, SignalSet, catalog
from polyroute.signals.rules import Rule, compile_rules, first_match
from polyroute.signals.semantic import ExampleIndex

__all__ = [
    "ANALYSIS",
    "Action",
    "BOOL",
    "BUILTINS",
    "Condition",
    "DomainConfig",
    "ExampleIndex",
    "KINDS",
    "KeywordConfig",
    "NUMBER",
    "NamedRouteConfig",
    "REQUEST",
    "Rule",
    "RuleConfig",
    "SET",
    "STRING",
    "Signal",
    "SignalInputs",
    "SignalSet",
    "SignalValues",
    "SignalsConfig",
    "catalog",
    "check_rules",
    "compile_rules",
    "first_match",
]

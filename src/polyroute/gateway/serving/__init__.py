"""Serving strategies: how a decided request is answered, one module per call shape.

``single`` (the first candidate that answers, the rest as fallbacks; streams relayed as they
arrive), ``cascade`` (cheap model first, escalate while its answer looks weak) and ``topk`` (a
set asked in parallel, merged by an aggregator). A policy kind names its strategy
(:attr:`~polyroute.policies.kinds.PolicyKind.serving`); the serve stage looks it up here. Each
strategy also says which backends may answer and how many calls a request may make, so that a
spend reservation bounds what it can cost.
"""

from __future__ import annotations

from polyroute.gateway.serving.base import ServingStrategy
from polyroute.gateway.serving.cascade import CascadeStrategy
from polyroute.gateway.serving.single import SingleStrategy
from polyroute.gateway.serving.topk import TopKStrategy
from polyroute.policies.kinds import CASCADE, SINGLE, TOPK

_STRATEGIES: dict[str, ServingStrategy] = {}


def register_strategy(name: str, strategy: ServingStrategy) -> None:
    if name in _STRATEGIES and _STRATEGIES[name] is not strategy:
        raise ValueError(f"serving strategy {name!r} registered twice")
    _STRATEGIES[name] = strategy


def strategy_for(name: str) -> ServingStrategy:
    return _STRATEGIES[name]


register_strategy(SINGLE, SingleStrategy())
register_strategy(CASCADE, CascadeStrategy())
register_strategy(TOPK, TopKStrategy())

__all__ = ["ServingStrategy", "register_strategy", "strategy_for"]

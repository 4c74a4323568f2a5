"""Routers: fit on outcomes, estimate every candidate's quality for new prompts.

Importing this package registers every built-in router; add a new one by writing a module with a
``@register("name")`` class and importing it below.
"""

from polyroute.routers import (  # noqa: F401 (registers)
    bandit,
    baselines,
    cluster,
    ensemble,
    irt,
    knn,
    linear,
    mf,
    mlp,
)
from polyroute.routers.base import Estimates, Router
from polyroute.routers.cost import CostModel
from polyroute.routers.registry import available_routers, get_router_class, make_router, register

__all__ = [
    "CostModel",
    "Estimates",
    "Router",
    "available_routers",
    "get_router_class",
    "make_router",
    "register",
]

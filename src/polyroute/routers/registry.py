"""Router names → classes: the single list the CLI, evaluation and gateway config share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polyroute.errors import RouterError
from polyroute.routers.base import Router

_REGISTRY: dict[str, type[Router]] = {}


def register(name: str) -> Callable[[type[Router]], type[Router]]:
    """Class decorator: make a router available under ``name``."""

    def wrap(cls: type[Router]) -> type[Router]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"router name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_routers(include_evaluation_only: bool = True) -> list[str]:
    """Registered router names, sorted."""
    return sorted(n for n, c in _REGISTRY.items()
                  if include_evaluation_only or not c.evaluation_only)


def get_router_class(name: str) -> type[Router]:
    if name not in _REGISTRY:
        raise RouterError(f"unknown router {name!r}; choose from: "
                          f"{', '.join(available_routers())}")
    return _REGISTRY[name]


def make_router(name: str, **params: Any) -> Router:
    """Instantiate a registered router; unknown parameters are reported by name."""
    cls = get_router_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise RouterError(f"router {name!r}: {exc}") from None

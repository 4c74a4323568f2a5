"""Plugins: a user's own signal or guard, named in the config by import path or entry point.

Why both: an import path (``my_company.routing:TicketPriority``) needs nothing but the module on
``sys.path``; an entry point (``ticket-priority``, declared by an installed package under the
group ``polyroute.signals`` or ``polyroute.guards``, as pluggy and simonw/llm plugins are) lets a
package ship plugins that users name without knowing its modules. Either names a class; the
config's ``options`` are its keyword arguments. A name that resolves to nothing is a one-line
:class:`~polyroute.errors.ConfigError` at start-up, never a traceback on the first request.

The interfaces (docs/extending.md): a cache index backend (group ``polyroute.cache``) is built
as ``Index(dim, **options)`` with ``add``, ``remove`` and ``search``; a signal is a class with
``name``, ``kind`` (``bool`` / ``number`` / ``string`` / ``set``) and ``needs`` (``request``, or
``analysis`` for one that reads the router's embedding or estimates) as class attributes and
``compute(inputs) -> value`` (:class:`~polyroute.signals.base.Signal`); a guard has
``check(text, embedding) -> Verdict`` (:class:`~polyroute.guards.base.Guard`).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from polyroute.errors import ConfigError

SIGNALS_GROUP = "polyroute.signals"
GUARDS_GROUP = "polyroute.guards"
CACHE_GROUP = "polyroute.cache"


class PluginSpec(BaseModel):
    """``{use: "module:Class" | entry-point name, options: {...}}`` in the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    use: str
    options: dict[str, Any] = Field(default_factory=dict)


def resolve(use: str, group: str) -> type:
    """The class ``use`` names: ``module:attr`` (an import path) or an entry point in ``group``."""
    if ":" in use:
        module_name, _, attr = use.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"plugin {use!r}: cannot import it ({exc}); is its module on the "
                              f"Python path?") from None
    else:
        found = [ep for ep in entry_points(group=group) if ep.name == use]
        if not found:
            raise ConfigError(f"plugin {use!r}: no entry point of that name in group {group!r} "
                              f"(install the package that provides it, or give an import path "
                              f"such as my_module:MyClass)")
        try:
            obj = found[0].load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin package, reported by name
            raise ConfigError(f"plugin {use!r}: its entry point failed to load ({exc})") from None
    if not isinstance(obj, type):
        raise ConfigError(f"plugin {use!r}: names a {type(obj).__name__}, not a class")
    return obj


def plugin_class(spec: PluginSpec, group: str, required: tuple[str, ...]) -> type:
    """The class ``spec`` names, checked for the ``required`` attributes."""
    cls = resolve(spec.use, group)
    missing = [a for a in required if not hasattr(cls, a)]
    if missing:
        raise ConfigError(f"plugin {spec.use!r}: {cls.__name__} lacks {', '.join(missing)} "
                          f"(see docs/extending.md for the interface)")
    return cls


def instantiate(spec: PluginSpec, group: str, required: tuple[str, ...], *args: Any) -> Any:
    """An instance of the class ``spec`` names (``args`` first, then its ``options``)."""
    cls = plugin_class(spec, group, required)
    try:
        return cls(*args, **spec.options)
    except TypeError as exc:
        raise ConfigError(f"plugin {spec.use!r}: bad options ({exc})") from None

"""The router contract, in scikit-learn's manner.

* The constructor stores hyper-parameters only (no work, no data).
* ``fit(outcomes, features)`` validates its input and learns state in attributes ending in ``_``.
* ``estimate(features)`` returns an :class:`Estimates`: every candidate's expected quality for
  every prompt, never a single "best model" label (ties at the top are the rule on real data).

Subclasses write ``_fit`` and ``_estimate`` only; checking, saving and loading live here. Saving
writes JSON plus ``.npz`` arrays read back with ``allow_pickle=False``, so loading a router file
cannot run code.
"""

from __future__ import annotations

import functools
import inspect
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.errors import NotFittedError, RouterError
from polyroute.routers.params import Constraint, check_params

STATE_FILE = "router_state.json"
ARRAYS_FILE = "router_arrays.npz"


@dataclass(frozen=True)
class Estimates:
    """What a router believes about each (prompt, model) pair, in the column order of ``models``.

    ``cost`` is the predicted dollar cost (filled by the pipeline's cost model unless the router
    predicts it itself); ``cost_scale`` is the reference cost that makes the trade-off weight λ
    dimensionless (λ = 1 gives up one quality point to save ``cost_scale`` dollars).
    """

    models: tuple[str, ...]
    quality: np.ndarray
    cost: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    cost_scale: float = 1.0

    def __post_init__(self) -> None:
        shape = (self.quality.shape[0], len(self.models))
        if self.quality.shape != shape:
            raise ValueError(f"quality has shape {self.quality.shape}, expected {shape}")
        for name in ("cost", "uncertainty"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != shape:
                raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")

    @property
    def n_prompts(self) -> int:
        return int(self.quality.shape[0])

    def with_cost(self, cost: np.ndarray, cost_scale: float) -> Estimates:
        return replace(self, cost=cost, cost_scale=cost_scale)

    def select_models(self, names: Sequence[str]) -> Estimates:
        """These estimates for the named models only, in the given order (matched by name)."""
        names = tuple(names)
        if names == self.models:
            return self
        index = {n: j for j, n in enumerate(self.models)}
        missing = [n for n in names if n not in index]
        if missing:
            raise RouterError(f"estimates hold no model named {', '.join(missing)}; they "
                              f"cover {', '.join(self.models)}")
        cols = [index[n] for n in names]

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[:, cols]

        return replace(self, models=names, quality=self.quality[:, cols], cost=pick(self.cost),
                       uncertainty=pick(self.uncertainty))

    def subset(self, rows: np.ndarray) -> Estimates:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        return replace(self, quality=self.quality[rows], cost=pick(self.cost),
                       uncertainty=pick(self.uncertainty))


class Router(ABC):
    """Base class of all routers. Subclasses set ``name`` and implement ``_fit``/``_estimate``."""

    name: ClassVar[str] = ""
    #: True if ``learn_one`` updates the router from one observed outcome (partial feedback).
    learns_online: ClassVar[bool] = False
    #: True for routers that read the true outcomes (the oracle): never saved, never served.
    evaluation_only: ClassVar[bool] = False
    #: True if ``add_model(name, ask, pool, budget)`` adds a candidate from a few of its answers.
    adds_models: ClassVar[bool] = False
    #: What each constructor parameter accepts (see :mod:`polyroute.routers.params`); checked
    #: when the router is built and again at ``fit``. Every registered router declares one
    #: entry per parameter (a shared test makes sure).
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap each subclass's ``__init__`` so that the finished object checks its parameters:
        a bad value fails where the router is built (the CLI: before data is loaded or
        embedded), whichever way it is built (registry, class, saved state)."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def checked_init(self: Router, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self).__init__ is checked_init:  # the outermost constructor, once
                self._validate_params()

        cls.__init__ = checked_init  # type: ignore[method-assign]

    def _validate_params(self) -> None:
        """Raise RouterError naming the router and the first parameter that breaks its declared
        constraint."""
        problem = check_params(self.get_params(), type(self)._parameter_constraints)
        if problem is not None:
            raise RouterError(f"router {self.name or type(self).__name__!r}: {problem}")

    # -- parameters ----------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, read back from attributes of the same name."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, outcomes: Outcomes, features: np.ndarray) -> Router:
        """Learn from ``outcomes`` whose prompts are embedded row-for-row in ``features``."""
        self._validate_params()  # attributes may have been changed since construction
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] != outcomes.n_prompts:
            raise RouterError(f"{type(self).__name__}.fit: features have shape {features.shape}, "
                              f"expected ({outcomes.n_prompts}, dim)")
        if outcomes.n_prompts == 0:
            raise RouterError(f"{type(self).__name__}.fit: no training prompts")
        if np.all(np.isnan(outcomes.quality)):
            raise RouterError(f"{type(self).__name__}.fit: no known quality cell to learn from")
        self.models_ = list(outcomes.model_names)
        self.n_features_in_ = int(features.shape[1])
        self._fit(outcomes, features)
        return self

    def estimate(self, features: np.ndarray) -> Estimates:
        """Every model's expected quality (in [0, 1]) for each row of ``features``."""
        self._check_fitted()
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.n_features_in_:
            raise RouterError(f"{type(self).__name__}.estimate: features have shape "
                              f"{features.shape}, expected (n, {self.n_features_in_})")
        quality, uncertainty = self._estimate(features)
        return Estimates(models=tuple(self.models_), quality=np.clip(quality, 0.0, 1.0),
                         uncertainty=uncertainty)

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    @abstractmethod
    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        """Learn from validated input; set attributes ending in ``_``."""

    @abstractmethod
    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(quality, uncertainty or None) for validated features, each ``(n, n_models)``."""

    # -- persistence ---------------------------------------------------------------------------
    def _learned_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def save(self, directory: str | Path) -> None:
        """Write parameters and learned state to ``directory`` (JSON + npz, no pickle)."""
        self._check_fitted()
        if self.evaluation_only:
            raise RouterError(f"{self.name!r} reads the true outcomes and cannot be saved")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        for key, value in self._learned_attributes().items():
            if isinstance(value, np.ndarray):
                arrays[key] = value
            elif isinstance(value, list) and value and all(isinstance(v, np.ndarray)
                                                           for v in value):
                meta[key] = {"__arrays__": len(value)}
                for i, v in enumerate(value):
                    arrays[f"{key}.{i}"] = v
            else:
                meta[key] = _jsonable(value, key)
        state = {"router": self.name, "params": _jsonable(self.get_params(), "params"),
                 "learned": meta}
        (directory / STATE_FILE).write_text(json.dumps(state, indent=1))
        np.savez(directory / ARRAYS_FILE, **arrays)

    @classmethod
    def load(cls, directory: str | Path) -> Router:
        """Rebuild a router saved with :meth:`save`, whatever its class (via the registry)."""
        from polyroute.routers.registry import get_router_class

        directory = Path(directory)
        try:
            state = json.loads((directory / STATE_FILE).read_text())
            npz = np.load(directory / ARRAYS_FILE, allow_pickle=False)
            arrays = {k: npz[k] for k in npz.files}
            name, params, learned = state["router"], state["params"], state["learned"]
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise RouterError(f"{directory}: not a saved polyroute router ({exc})") from None
        klass = get_router_class(name)
        try:
            router = klass(**_restore_tuples(klass, params))
        except TypeError as exc:
            raise RouterError(f"{directory}: saved parameters do not fit {klass.__name__} "
                              f"({exc})") from None
        for key, value in learned.items():
            if isinstance(value, dict) and "__arrays__" in value:
                value = [arrays[f"{key}.{i}"] for i in range(value["__arrays__"])]
            setattr(router, key, value)
        for key, value in arrays.items():
            if "." not in key:
                setattr(router, key, value)
        router._after_load()
        return router

    def _after_load(self) -> None:
        """Rebuild derived state that is not saved (a search index built from saved vectors)
        once the learned attributes are back. Nothing to do by default."""
        return None


def _restore_tuples(klass: type[Router], params: dict[str, Any]) -> dict[str, Any]:
    """JSON has no tuples: give back tuples where the constructor's default is one."""
    sig = inspect.signature(klass.__init__).parameters
    return {k: tuple(v) if isinstance(v, list) and k in sig
            and isinstance(sig[k].default, tuple) else v for k, v in params.items()}


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise TypeError(f"cannot save attribute {where!r} of type {type(value).__name__}")


def observed_mean(quality: np.ndarray) -> np.ndarray:
    """Per-model mean of known cells; models never observed get the overall mean."""
    with np.errstate(invalid="ignore"):
        means = np.nanmean(quality, axis=0)
    overall = float(np.nanmean(quality))
    return np.where(np.isnan(means), overall, means)


def impute_missing(quality: np.ndarray) -> np.ndarray:
    """Fill unknown cells with the model's mean, for learners that need a complete matrix."""
    means = observed_mean(quality)
    return np.where(np.isnan(quality), means[None, :], quality)

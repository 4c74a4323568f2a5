"""The recorded-outcomes table every other part of polyroute consumes.

An :class:`Outcomes` is immutable: slicing or splitting returns a new table that shares nothing
mutable with the old one, so a router can never leak test rows into its training state by accident.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from polyroute.errors import DataError

#: Output tokens assumed per answer when a data set records no per-answer cost (see SOURCE.md).
DEFAULT_OUTPUT_TOKENS = 256


class ModelMismatchWarning(UserWarning):
    """Two tables that meet (training and test outcomes, estimates and outcomes) list different
    models; only the models both hold are used."""


def shared_models(left: Sequence[str], right: Sequence[str], *, left_label: str = "training",
                  right_label: str = "test") -> tuple[str, ...]:
    """The model names both sides hold, in ``left``'s order: the one rule by which two tables
    meet. Columns are matched by name, never by position.

    Names only one side holds are reported in a :class:`ModelMismatchWarning` (a renamed model
    shows up on both sides of it); a DataError says so when no name is shared at all.
    """
    right_set, left_set = set(right), set(left)
    common = tuple(n for n in left if n in right_set)
    only_left = [n for n in left if n not in right_set]
    only_right = [n for n in right if n not in left_set]
    if not common:
        raise DataError(f"the {left_label} models ({', '.join(left)}) and the {right_label} "
                        f"models ({', '.join(right)}) share no name; nothing can be scored")
    if only_left or only_right:
        parts = [f"{label} only: {', '.join(names)}" for label, names in
                 ((left_label, only_left), (right_label, only_right)) if names]
        warnings.warn(f"scoring on the {len(common)} model(s) both {left_label} and "
                      f"{right_label} hold ({'; '.join(parts)})", ModelMismatchWarning,
                      stacklevel=2)
    return common


@dataclass(frozen=True)
class ModelInfo:
    """A candidate model and its list prices in dollars per million tokens."""

    name: str
    input_price_per_mtok: float
    output_price_per_mtok: float

    def __post_init__(self) -> None:
        for attr in ("input_price_per_mtok", "output_price_per_mtok"):
            value = getattr(self, attr)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise DataError(f"model {self.name!r}: {attr} must be a number >= 0, got {value!r}")


def input_tokens(text: str) -> int:
    """Approximate input tokens the way the bundled data's cost rule does: ceil(chars / 4)."""
    return math.ceil(len(text) / 4)


def rule_cost(text: str, model: ModelInfo, output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> float:
    """Dollar cost of one call when no real cost was recorded (SOURCE.md's convention)."""
    return (
        input_tokens(text) * model.input_price_per_mtok
        + output_tokens * model.output_price_per_mtok
    ) / 1_000_000


def rule_costs(texts: Sequence[str], models: Sequence[ModelInfo],
               output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> np.ndarray:
    """:func:`rule_cost` for every (text, model) pair at once: a ``(texts, models)`` array."""
    tokens = np.array([input_tokens(t) for t in texts], dtype=float)
    price_in = np.array([m.input_price_per_mtok for m in models], dtype=float)
    price_out = np.array([m.output_price_per_mtok for m in models], dtype=float)
    return (tokens[:, None] * price_in[None, :] + output_tokens * price_out[None, :]) / 1_000_000


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Prompts × models table of recorded quality (in [0, 1], NaN = unknown) and cost (dollars).

    Attributes mirror the columns of the long format: ``prompt_ids``, ``prompts`` and ``tasks`` are
    per row; ``models`` is per column; ``quality``, ``cost`` and the optional ``latency`` (seconds)
    are ``(n_prompts, n_models)`` float arrays.
    """

    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    tasks: tuple[str, ...]
    models: tuple[ModelInfo, ...]
    quality: np.ndarray
    cost: np.ndarray
    latency: np.ndarray | None = None
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self) -> None:
        n, m = len(self.prompt_ids), len(self.models)
        if not (len(self.prompts) == len(self.tasks) == n):
            raise DataError(f"{self.source}: prompt_ids, prompts and tasks differ in length")
        for name in ("quality", "cost") + (("latency",) if self.latency is not None else ()):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != (n, m):
                raise DataError(f"{self.source}: {name} has shape {arr.shape}, expected {(n, m)}")
            arr = arr.copy()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        q = self.quality[~np.isnan(self.quality)]
        if q.size and (q.min() < 0 or q.max() > 1):
            raise DataError(f"{self.source}: quality values must lie in [0, 1]")
        if len(set(self.prompt_ids)) != n:
            raise DataError(f"{self.source}: prompt ids are not unique")
        names = [mi.name for mi in self.models]
        if len(set(names)) != m:
            raise DataError(f"{self.source}: model names are not unique")

    # -- shape -------------------------------------------------------------------------------
    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(mi.name for mi in self.models)

    @property
    def task_names(self) -> tuple[str, ...]:
        """Distinct task labels in first-seen order."""
        return tuple(dict.fromkeys(self.tasks))

    def __len__(self) -> int:
        return self.n_prompts

    def __repr__(self) -> str:
        known = float(np.mean(~np.isnan(self.quality))) if self.quality.size else 0.0
        return (
            f"Outcomes({self.n_prompts} prompts × {len(self.models)} models, "
            f"{len(self.task_names)} tasks, {known:.0%} cells known, source={self.source!r})"
        )

    # -- slicing -----------------------------------------------------------------------------
    def subset(self, rows: Sequence[int] | np.ndarray) -> Outcomes:
        """A new table holding only ``rows`` (indices or a boolean mask), in that order."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(int)
        return Outcomes(
            prompt_ids=tuple(self.prompt_ids[i] for i in idx),
            prompts=tuple(self.prompts[i] for i in idx),
            tasks=tuple(self.tasks[i] for i in idx),
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
            latency=None if self.latency is None else self.latency[idx],
            source=self.source,
        )

    def select_models(self, names: Sequence[str]) -> Outcomes:
        """A new table with only the named model columns, in the given order."""
        if tuple(names) == self.model_names:
            return self
        index = {n: j for j, n in enumerate(self.model_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise DataError(f"{self.source}: unknown model(s) {', '.join(missing)}")
        cols = [index[n] for n in names]
        return Outcomes(
            prompt_ids=self.prompt_ids,
            prompts=self.prompts,
            tasks=self.tasks,
            models=tuple(self.models[j] for j in cols),
            quality=self.quality[:, cols],
            cost=self.cost[:, cols],
            latency=None if self.latency is None else self.latency[:, cols],
            source=self.source,
        )

    def sample(self, n: int, random_state: int | None = 0) -> Outcomes:
        """A seeded random sample of ``n`` rows (all rows if ``n`` >= the table's size)."""
        if n < 1:
            raise DataError(f"the sample size must be at least 1, got {n}")
        if n >= self.n_prompts:
            return self
        rng = np.random.default_rng(random_state)
        return self.subset(np.sort(rng.choice(self.n_prompts, size=n, replace=False)))

    # -- summaries ---------------------------------------------------------------------------
    def mean_quality(self) -> np.ndarray:
        """Per-model mean of the known quality cells."""
        with np.errstate(invalid="ignore"):
            return np.nanmean(self.quality, axis=0)

    def mean_cost(self) -> np.ndarray:
        """Per-model mean cost per prompt, in dollars."""
        return np.nanmean(self.cost, axis=0)


def align_models(left: Outcomes, right: Outcomes, *, left_label: str = "training",
                 right_label: str = "test") -> tuple[Outcomes, Outcomes]:
    """Both tables restricted to their shared models, in ``left``'s column order.

    Rows are untouched; see :func:`shared_models` for the warning and the error. A no-op (and
    silent) when both already hold the same models in the same order.
    """
    if left.model_names == right.model_names:
        return left, right
    common = shared_models(left.model_names, right.model_names, left_label=left_label,
                           right_label=right_label)
    return left.select_models(common), right.select_models(common)

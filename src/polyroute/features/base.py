"""The featurizer contract: a stable ``id`` and ``encode(texts) -> (n, d) float32 array``.

The id is recorded in every saved router and checked on load, because a router trained on one
embedding space gives silent nonsense in another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Featurizer(Protocol):
    """Anything that turns prompt texts into fixed-width vectors."""

    @property
    def id(self) -> str:
        """Stable identifier of the embedding space (model name + settings + fitted state)."""
        ...

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as a ``(len(texts), dim)`` float32 array."""
        ...


@runtime_checkable
class FittableFeaturizer(Featurizer, Protocol):
    """A featurizer that learns from the training prompts and must be saved beside the router."""

    needs_fit: bool

    def fit(self, texts: Sequence[str]) -> FittableFeaturizer: ...

    def save(self, directory: Path) -> None: ...

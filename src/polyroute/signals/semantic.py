"""Labelled example texts embedded once, and a request's similarity to each label.

Why the router's own featurizer: a request's embedding is already computed for its routing
decision, so comparing it with examples embedded in the same space costs one small matrix
product, never a second encoder pass. The index is built when the gateway (re)loads a router,
because another router may embed in another space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

#: ``embed(texts) -> (len(texts), dim) array``: the router's featurizer.
Embed = Callable[[Sequence[str]], np.ndarray]


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class ExampleIndex:
    """Example texts per label; a text's similarity to a label is its highest cosine
    similarity to one of that label's examples (nearest example, not the centroid: a label's
    examples may be several different ways of asking)."""

    def __init__(self, examples: Mapping[str, Sequence[str]], embed: Embed) -> None:
        self.labels: tuple[str, ...] = tuple(examples)
        texts = [t for label in self.labels for t in examples[label]]
        self._owner = np.array([i for i, label in enumerate(self.labels)
                                for _ in examples[label]], dtype=int)
        self._matrix = _normalised(embed(texts)) if texts else np.zeros((0, 0))

    def similarities(self, embedding: np.ndarray) -> dict[str, float]:
        """Label → the best cosine similarity of ``embedding`` to one of its examples."""
        if not self.labels:
            return {}
        sims = self._matrix @ _normalised(np.ravel(embedding))
        best = np.full(len(self.labels), -1.0)
        np.maximum.at(best, self._owner, sims)
        return {label: float(best[i]) for i, label in enumerate(self.labels)}

    def nearest(self, embedding: np.ndarray, thresholds: Mapping[str, float]
                ) -> tuple[str | None, dict[str, float]]:
        """The most similar label whose similarity reaches its threshold (None if none does),
        and every label's similarity."""
        sims = self.similarities(embedding)
        above = [(s, label) for label, s in sims.items() if s >= thresholds[label]]
        return (max(above, key=lambda p: p[0])[1] if above else None), sims

"""An in-memory cosine index of cached requests' embeddings: exact while small, HNSW when large.

Why two implementations behind one class. A cache partition (one key scope × profile ×
parameter fingerprint × category) holds from a handful to tens of thousands of entries. Below a
few thousand, a brute-force matrix product is both exact and faster than any graph index
(measured here, 384-dim MiniLM vectors, one query, 2 cores: numpy 23 µs at 500 entries and 49 µs
at 2,000, against 70 µs and 118 µs for usearch's HNSW; at 5,000 numpy took ~8 ms and usearch
0.36 ms; at 50,000 numpy 7 ms, usearch 0.57 ms). So the index is a numpy matrix up to
``switch_at`` entries (default 2,048) and an HNSW graph above it; the switch happens once, when
the partition grows past it (and back, when it shrinks below half, so eviction churn near the
boundary does not rebuild on every insert).

Why usearch for the graph (of the three the issue names): it installs here as a small CPU wheel
with no heavy dependencies, and it *removes* entries by key — the cache evicts on TTL and on its
size quota all the time, and faiss's HNSW index cannot delete (it would need periodic rebuilds or
an IDMap over a flat index, i.e. no graph); hnswlib has no wheel for this Python here (it would
build from source) and only marks deletions. usearch is imported only when a partition first
grows past ``switch_at``.

Similarity is cosine; vectors are normalised on the way in, so scores are in [-1, 1]. The search
itself (exact top-k, the graph and reading its answers) is shared with the neighbour-based
routers in :mod:`polyroute.neighbours`; this class adds the keyed, mutable partition.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polyroute.neighbours import exact_top_k, graph_top_k, new_graph

#: Entries at which a partition moves from exact search to the HNSW graph.
SWITCH_AT = 2048


def _unit(vec: np.ndarray) -> np.ndarray:
    v = np.asarray(vec, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class VectorIndex:
    """Integer ids → unit vectors; ``search`` returns the nearest ids with their cosine."""

    def __init__(self, dim: int, *, switch_at: int = SWITCH_AT) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.switch_at = switch_at
        self._vectors: dict[int, np.ndarray] = {}
        # Exact mode: a matrix rebuilt lazily after changes (rows in ``_order``).
        self._matrix: np.ndarray | None = None
        self._order: list[int] = []
        self._graph: Any = None  # a usearch Index once the partition is large

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: int) -> bool:
        return key in self._vectors

    @property
    def approximate(self) -> bool:
        """True while the HNSW graph answers (the partition is large)."""
        return self._graph is not None

    def add(self, key: int, vec: np.ndarray) -> None:
        v = _unit(vec)
        if v.shape != (self.dim,):
            raise ValueError(f"vector has {v.size} dimensions, the index {self.dim}")
        if key in self._vectors:
            self.remove(key)
        self._vectors[key] = v
        self._matrix = None
        if self._graph is not None:
            self._graph.add(key, v)
        elif len(self._vectors) > self.switch_at:
            self._build_graph()

    def remove(self, key: int) -> None:
        if self._vectors.pop(key, None) is None:
            return
        self._matrix = None
        if self._graph is not None:
            self._graph.remove(key)
            if len(self._vectors) < self.switch_at // 2:
                self._graph = None

    def search(self, vec: np.ndarray, k: int = 1) -> list[tuple[int, float]]:
        """Up to ``k`` (id, cosine) pairs, most similar first."""
        if not self._vectors or k < 1:
            return []
        q = _unit(vec)
        if self._graph is not None:
            keys, dist = graph_top_k(self._graph, q[None, :], min(k, len(self._vectors)))
            # usearch's cosine *distance* is 1 - cosine.
            return [(int(key), 1.0 - float(d)) for key, d in
                    zip(keys[0].tolist(), dist[0].tolist(), strict=True) if key >= 0]
        if self._matrix is None:
            self._order = list(self._vectors)
            self._matrix = np.stack([self._vectors[i] for i in self._order])
        rows, scores = exact_top_k(self._matrix, q[None, :], k)
        return [(self._order[i], float(s)) for i, s in
                zip(rows[0].tolist(), scores[0].tolist(), strict=True)]

    def _build_graph(self) -> None:
        graph = new_graph(self.dim)
        keys = np.fromiter(self._vectors, dtype=np.uint64, count=len(self._vectors))
        # One thread, as the routers' graphs (polyroute.neighbours): usearch's multi-threaded
        # batch insert built graphs that lost true neighbours and differed run to run.
        graph.add(keys, np.stack(list(self._vectors.values())), threads=1)
        self._graph = graph

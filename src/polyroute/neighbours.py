"""Nearest-neighbour search over a set of vectors: exact (numpy) or approximate (usearch's HNSW).

One home for the search both the semantic cache (:mod:`polyroute.cache.index`, which adds and
removes entries one by one) and the neighbour-based routers (kNN over training prompts, cluster
over centres; a fixed set built once at fit or load) need. Why usearch and not faiss or hnswlib
is said in :mod:`polyroute.cache.index`; the routers make the same choice so that one library,
one set of graph settings and one way of reading its answers serve both.

Exact search is a matrix product and a partial sort: its cost grows with ``rows × dim``. The
graph answers in a time that grows with ``log(rows)`` but costs a build (~10 s for 111,112 rows
of 64 floats on 2 shared cores, see ``benchmarks/results/scale.md``) and may miss a true
neighbour (recall of the 40 nearest: 0.994 there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: How a neighbour-based router searches: ``auto`` = exact while the set holds at most
#: :data:`EXACT_UP_TO` floats (rows × dim), the HNSW graph above; ``exact`` and ``hnsw`` force one.
INDEX_KINDS = ("auto", "exact", "hnsw")
#: Floats (rows × dim) up to which ``auto`` searches exactly: one exact query reads them all.
#: Measured by benchmarks/scale.py (one kNN decision, 2 shared cores): 0.35 ms at 11,112 × 64
#: (0.7 M floats) and 1.7 ms at 111,112 × 64 (7.1 M), against 0.26-0.54 ms for the graph; 1 ms
#: is ~4 M floats: 62,500 rows of 64-dim TF-IDF, 10,400 of 384-dim MiniLM.
EXACT_UP_TO = 4_000_000
#: Similarity blocks of at most this many floats (64 MB): exact search over 10⁵-10⁶ rows for a
#: batch of queries never materialises the whole (queries × rows) matrix.
_BLOCK_FLOATS = 16 * 1024 * 1024


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32: cosine = dot product."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def top_k_of_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest ``scores``, largest first."""
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(scores.shape[1]), (scores.shape[0], k))
    vals = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(vals, order, axis=1)


def exact_top_k(matrix: np.ndarray, queries: np.ndarray, k: int, *, metric: str = "cos",
                sq_norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of each query's ``k`` nearest rows of ``matrix``, nearest first.

    ``cos``: rows and queries are unit vectors and the score is the cosine. ``l2sq``: the score
    is minus the squared distance up to the query's own norm (``2 q·r - |r|²``; the ranking is
    the same), ``sq_norms`` the rows' squared norms if known. Queries go in blocks so memory
    stays bounded whatever the number of rows.
    """
    n_rows = matrix.shape[0]
    k = min(k, n_rows)
    if metric == "l2sq" and sq_norms is None:
        sq_norms = (matrix.astype(np.float64) ** 2).sum(axis=1)
    block = max(1, _BLOCK_FLOATS // max(n_rows, 1))
    rows = np.empty((queries.shape[0], k), dtype=np.int64)
    scores = np.empty((queries.shape[0], k), dtype=np.float64)
    for start in range(0, queries.shape[0], block):
        # (rows × dim) @ (dim × queries), not queries @ matrix.T: OpenBLAS packs the transposed
        # operand of the latter on every call, which made 2-32 queries cost 2× (measured,
        # 5,489 × 256: 1.36 against 0.68 ms for 4 queries, 3.0 against 1.8 ms for 32).
        sims = np.ascontiguousarray((matrix @ queries[start:start + block].T).T)
        if metric == "l2sq":
            sims = 2.0 * sims - sq_norms[None, :]
        rows[start:start + block], scores[start:start + block] = top_k_of_scores(sims, k)
    return rows, scores


def new_graph(dim: int, *, metric: str = "cos", expansion_add: int | None = None,
              expansion_search: int | None = None) -> Any:
    """An empty usearch HNSW index of ``dim`` float32 vectors (usearch's defaults unless set)."""
    from usearch.index import Index  # only large sets need it

    opts: dict[str, Any] = {}
    if expansion_add is not None:
        opts["expansion_add"] = expansion_add
    if expansion_search is not None:
        opts["expansion_search"] = expansion_search
    return Index(ndim=dim, metric=metric, dtype="f32", **opts)


def graph_top_k(graph: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, distances) of each query's ``k`` nearest graph entries, nearest first; a query
    with fewer answers is padded with key -1 and distance +inf."""
    found = graph.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    keys = np.asarray(found.keys, dtype=np.int64).reshape(queries.shape[0], -1)
    dist = np.asarray(found.distances, dtype=np.float64).reshape(queries.shape[0], -1)
    # One query gives usearch's Matches (no ``counts``: every key it holds is real).
    counts = np.asarray(getattr(found, "counts", [keys.shape[1]])).reshape(-1)
    missing = np.arange(keys.shape[1])[None, :] >= counts[:, None]
    keys[missing] = -1
    dist[missing] = np.inf
    return keys, dist


def uses_graph(kind: str, rows: int, dim: int) -> bool:
    """Whether an index of ``kind`` over ``rows`` vectors of ``dim`` floats searches through
    the HNSW graph."""
    return kind == "hnsw" or (kind == "auto" and rows * dim > EXACT_UP_TO)


class NeighbourIndex:
    """A fixed set of vectors searched by row number, exactly or through an HNSW graph.

    ``kind`` is one of :data:`INDEX_KINDS`; ``auto`` builds the graph only above
    :data:`EXACT_UP_TO` floats. The vectors are kept (the exact path and a rebuild need them);
    the graph is derived state and never saved, see the routers' ``_after_load``.
    """

    #: Graph settings for the routers' static sets: a cheaper build than usearch's default
    #: ``expansion_add=128`` (a third of the time), a wider search for recall at k up to ~300.
    EXPANSION_ADD = 64
    EXPANSION_SEARCH = 256

    def __init__(self, vectors: np.ndarray, *, kind: str = "auto", metric: str = "cos") -> None:
        if kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose from {', '.join(INDEX_KINDS)}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.metric = metric
        self.kind = kind
        self._sq_norms = ((self.vectors.astype(np.float64) ** 2).sum(axis=1)
                          if metric == "l2sq" else None)
        self.graph: Any = None
        if uses_graph(kind, *self.vectors.shape):
            self.graph = new_graph(self.vectors.shape[1], metric=metric,
                                   expansion_add=self.EXPANSION_ADD,
                                   expansion_search=self.EXPANSION_SEARCH)
            # One thread: the same vectors always make the same graph (a router rebuilt at
            # load answers as the one that was fitted), and on this small a set more threads
            # built graphs that lost true neighbours.
            self.graph.add(np.arange(len(self.vectors), dtype=np.uint64), self.vectors,
                           threads=1)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def approximate(self) -> bool:
        return self.graph is not None

    def serves(self, kind: str) -> bool:
        """Whether this index already searches the way ``kind`` asks (no rebuild needed)."""
        return self.approximate == uses_graph(kind, *self.vectors.shape)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, valid) of each query's ``k`` nearest rows, nearest first: ``rows`` is an
        ``(n, k)`` int array, ``valid`` says which entries are real (the graph may find fewer
        than ``k``; those are -1 and False)."""
        queries = np.asarray(queries, dtype=np.float32)
        k = min(k, len(self))
        if self.graph is None:
            rows, _ = exact_top_k(self.vectors, queries, k, metric=self.metric,
                                  sq_norms=self._sq_norms)
            return rows, np.ones(rows.shape, dtype=bool)
        rows, _ = graph_top_k(self.graph, queries, k)
        return rows, rows >= 0

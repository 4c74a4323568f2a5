"""k-means clusters of training prompts, each with its own per-model quality table.

Cheap and readable: ``polyroute`` can show what each cluster's prompts look like and which model
wins there. Cluster means are shrunk towards the global means so small clusters do not over-claim.
"""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.neighbours import INDEX_KINDS, NeighbourIndex
from polyroute.routers.base import Router, observed_mean
from polyroute.routers.params import NON_NEGATIVE, POSITIVE_INT, RANDOM_STATE, Options
from polyroute.routers.registry import register


@register("cluster")
class ClusterRouter(Router):
    """``n_clusters`` k-means clusters; ``prior`` pseudo-counts of shrinkage to the global mean.

    ``index`` says how a prompt finds its nearest centre, as for kNN (see
    :mod:`polyroute.neighbours`): the search set is the centres, so ``auto`` stays exact unless
    ``n_clusters × dim`` passes ``EXACT_UP_TO``. Above ``minibatch_above`` training prompts
    k-means runs in mini-batches (scikit-learn's MiniBatchKMeans), whose cost does not grow with
    ``n_init × n`` full passes.
    """

    _parameter_constraints = {"n_clusters": POSITIVE_INT, "prior": NON_NEGATIVE,
                              "index": Options(*INDEX_KINDS), "minibatch_above": POSITIVE_INT,
                              "random_state": RANDOM_STATE}

    def __init__(self, n_clusters: int = 20, prior: float = 5.0, index: str = "auto",
                 minibatch_above: int = 50_000, random_state: int = 0) -> None:
        self.n_clusters = n_clusters
        self.prior = prior
        self.index = index
        self.minibatch_above = minibatch_above
        self.random_state = random_state

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        k = max(1, min(self.n_clusters, features.shape[0]))
        if features.shape[0] > self.minibatch_above:
            km = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096,
                                 random_state=self.random_state).fit(features)
        else:
            km = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(features)
        q = outcomes.quality
        known = ~np.isnan(q)
        global_mean = observed_mean(q)
        table = np.zeros((k, q.shape[1]))
        sizes = np.zeros(k, dtype=int)
        for c in range(k):
            rows = km.labels_ == c
            sizes[c] = int(rows.sum())
            total = np.where(known[rows], q[rows], 0.0).sum(axis=0)
            count = known[rows].sum(axis=0)
            table[c] = (total + self.prior * global_mean) / (count + self.prior)
        self.centers_ = km.cluster_centers_.astype(np.float32)
        self.cluster_quality_ = table
        self.cluster_sizes_ = sizes
        self._after_load()

    def _after_load(self) -> None:
        # Squared Euclidean, as k-means assigns; the graph is rebuilt from the saved centres.
        self._index = NeighbourIndex(self.centers_, kind=self.index, metric="l2sq")

    def predict_cluster(self, features: np.ndarray) -> np.ndarray:
        """Index of the nearest cluster centre for each row."""
        self._check_fitted()
        index = getattr(self, "_index", None)
        if index is None or not index.serves(self.index):
            self._after_load()
        rows, _ = self._index.search(np.asarray(features, dtype=np.float32), 1)
        return rows[:, 0]

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return self.cluster_quality_[self.predict_cluster(features)], None

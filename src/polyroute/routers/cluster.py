"""k-means clusters of training prompts, each with its own per-model quality table.

Cheap and readable: ``polyroute`` can show what each cluster's prompts look like and which model
wins there. Cluster means are shrunk towards the global means so small clusters do not over-claim.
"""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.routers.base import Router, observed_mean
from polyroute.routers.params import NON_NEGATIVE, POSITIVE_INT, RANDOM_STATE
from polyroute.routers.registry import register


@register("cluster")
class ClusterRouter(Router):
    """``n_clusters`` k-means clusters; ``prior`` pseudo-counts of shrinkage to the global mean."""

    _parameter_constraints = {"n_clusters": POSITIVE_INT, "prior": NON_NEGATIVE,
                              "random_state": RANDOM_STATE}

    def __init__(self, n_clusters: int = 20, prior: float = 5.0, random_state: int = 0) -> None:
        self.n_clusters = n_clusters
        self.prior = prior
        self.random_state = random_state

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        from sklearn.cluster import KMeans

        k = max(1, min(self.n_clusters, features.shape[0]))
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

    def predict_cluster(self, features: np.ndarray) -> np.ndarray:
        """Index of the nearest cluster centre for each row."""
        self._check_fitted()
        # ||x - c||² = ||x||² - 2 x·c + ||c||²; the first term does not change the argmin, and
        # this avoids an (n, clusters, dim) temporary.
        d = (self.centers_ ** 2).sum(axis=1)[None, :] - 2.0 * features @ self.centers_.T
        return np.argmin(d, axis=1)

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return self.cluster_quality_[self.predict_cluster(features)], None

"""Exact and semantic caching of answers (issue 12, part 4).

``index`` is the in-memory vector index (exact numpy search while small, usearch's HNSW graph when
large); ``semantic`` the cache itself: partitions by client key, profile and parameter
fingerprint, lookups by exact request then nearest embedding within a per-category threshold,
TTL and size quota per category. The gateway's stages are in ``gateway/stages/cache.py``.
"""

from polyroute.cache.index import VectorIndex
from polyroute.cache.semantic import (
    CacheKey,
    Hit,
    Literals,
    SemanticCache,
    cache_key,
    fingerprint,
    literals,
)

__all__ = ["CacheKey", "Hit", "Literals", "SemanticCache", "VectorIndex", "cache_key",
           "fingerprint", "literals"]

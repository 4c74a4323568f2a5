"""An on-disk embedding cache keyed by (featurizer id, SHA-256 of the text).

Wrapping is done here once, for any featurizer, so that re-running an evaluation never re-embeds
and the gateway answers repeated prompts without touching the encoder. SQLite keeps it in one file
that several processes can share (WAL mode).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polyroute.features.artifacts import cache_root
from polyroute.features.base import Featurizer

_CHUNK = 500


#: Texts per call of :func:`encode_in_batches`.
ENCODE_BATCH = 4096


def encode_in_batches(featurizer: Featurizer, texts: Sequence[str], *,
                      batch_size: int = ENCODE_BATCH) -> np.ndarray:
    """``featurizer.encode(texts)`` a batch at a time into one preallocated float32 matrix.

    For training on a large log: behind a :class:`CachedFeaturizer` each batch's new vectors
    are stored as soon as they are computed (an interrupted run resumes where it stopped) and
    the only memory beyond the result is one batch's worth.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not texts:
        return np.asarray(featurizer.encode([]), dtype=np.float32)
    out: np.ndarray | None = None
    for start in range(0, len(texts), batch_size):
        part = np.asarray(featurizer.encode(texts[start:start + batch_size]), dtype=np.float32)
        if out is None:
            out = np.empty((len(texts), part.shape[1]), dtype=np.float32)
        out[start:start + len(part)] = part
    assert out is not None
    return out


def default_cache_path() -> Path:
    """``$POLYROUTE_CACHE_DIR/embeddings.sqlite``, else ``~/.cache/polyroute/embeddings.sqlite``."""
    return cache_root() / "embeddings.sqlite"


def with_cache(inner: Featurizer, cache: str | Path | bool | None = None) -> Featurizer:
    """``inner`` behind the cache ``cache`` names: a path, ``None``/``True`` for the default
    location, or ``False`` for no cache at all (the one place that reads this setting)."""
    if cache is False:
        return inner
    return CachedFeaturizer(inner, None if cache in (None, True) else cache)


class CachedFeaturizer:
    """Wraps a featurizer: cached embeddings are read, the rest computed and stored."""

    def __init__(self, inner: Featurizer, path: str | Path | None = None) -> None:
        self.inner = inner
        self.path = Path(path) if path is not None else default_cache_path()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def id(self) -> str:
        return self.inner.id

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS embeddings "
                         "(key TEXT PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL)")
            self._conn = conn
        return self._conn

    @staticmethod
    def _key(featurizer_id: str, text: str) -> str:
        return hashlib.sha256(f"{featurizer_id}\0{text}".encode("utf-8", "surrogatepass")
                              ).hexdigest()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        fid = self.inner.id  # once: a fitted featurizer's id may hash its whole state
        keys = [self._key(fid, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            conn = self._connection()
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, _dim, blob in conn.execute(
                        f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            first_text = {}
            for key, text in zip(keys, texts, strict=True):
                first_text.setdefault(key, text)
            vectors = self.inner.encode([first_text[k] for k in todo], progress=progress)
            rows = [(k, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes())
                    for k, v in zip(todo, vectors, strict=True)]
            with self._lock:
                conn = self._connection()
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            for k, v in zip(todo, vectors, strict=True):
                found[k] = np.asarray(v, dtype=np.float32)
        if not keys:
            return self.inner.encode([], progress=False)
        return np.stack([found[k] for k in keys])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

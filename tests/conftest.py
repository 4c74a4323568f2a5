"""Shared fixtures: small outcome tables whose right answer is known by construction.

The two-cluster world
---------------------
Prompts come in two clusters that are easy to tell apart, both as text (for TF-IDF) and as
ready-made embedding arrays (for routers, so that no encoder runs):

* **math** prompts ("What is 412 plus 77? ...") are solved only by model ``A`` (quality 1);
  ``B`` scores 0 on them;
* **poetry** prompts ("Write a short poem about the ocean ...") are solved only by ``B``
  (quality 1); ``A`` scores 0.1 on them;
* ``C`` is cheap and mediocre everywhere (quality 0.4).

Rows alternate math, poetry, math, ... With equal cluster sizes the single models' mean qualities
are A 0.55, B 0.5, C 0.4, so the best single model is ``A`` and the oracle scores 1.0. Prices are
output-only (input price 0), so every cell costs exactly ``256 × output price / 1e6`` dollars:
A 0.00256, B 0.00128, C 0.000128.

Fixtures stay generic (no servers, no threads); the only autouse fixture points the embedding
cache at a temporary directory and keeps Hugging Face offline.
"""

from __future__ import annotations

import os

# The suite runs on a couple of shared cores: small BLAS/OpenMP/torch problems run many times
# slower with a thread pool fighting other processes than on one thread (a TF-IDF fit on 300
# prompts: ~8 s against 0.3 s). Set before numpy, scikit-learn or torch load their thread pools;
# an explicit setting in the environment wins. Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from polyroute.data import ModelInfo, Outcomes, rule_cost  # noqa: E402

MODELS = (ModelInfo("A", 0.0, 10.0), ModelInfo("B", 0.0, 5.0), ModelInfo("C", 0.0, 0.5))
MATH_QUALITY = (1.0, 0.0, 0.4)
POETRY_QUALITY = (0.1, 1.0, 0.4)
_WORDS = ("ocean", "moon", "forest", "river", "autumn", "city", "garden", "winter", "mountain",
          "desert", "meadow", "harbour")


@dataclass(frozen=True)
class TwoCluster:
    """One two-cluster table with its embedding array and the row indices of each cluster."""

    outcomes: Outcomes
    features: np.ndarray
    math_rows: np.ndarray
    poetry_rows: np.ndarray

    @property
    def best_model(self) -> np.ndarray:
        """The true best model name per row (A for math, B for poetry)."""
        return np.array(["A" if t == "math" else "B" for t in self.outcomes.tasks])


def make_two_cluster(n_per_cluster: int = 20, *, seed: int = 0, prefix: str = "p", dim: int = 8,
                     noise: float = 0.1, missing: float = 0.0) -> TwoCluster:
    """Build a two-cluster table. ``missing`` blanks that share of B/C cells (A stays known)."""
    rng = np.random.default_rng(seed)
    ids, texts, tasks, quality, feats = [], [], [], [], []
    for i in range(2 * n_per_cluster):
        k = i // 2
        vec = rng.normal(0.0, noise, dim)
        if i % 2 == 0:
            a, b = (int(v) for v in rng.integers(2, 999, size=2))
            texts.append(f"What is {a} plus {b}? Compute the sum and show the arithmetic "
                         f"step by step.")
            tasks.append("math")
            quality.append(MATH_QUALITY)
            vec[0] += 1.0
        else:
            word = _WORDS[(k + seed) % len(_WORDS)]
            texts.append(f"Write a short poem about the {word} number {k} with rhyme and "
                         f"gentle imagery.")
            tasks.append("poetry")
            quality.append(POETRY_QUALITY)
            vec[1] += 1.0
        ids.append(f"{prefix}{i:04d}")
        feats.append(vec)
    q = np.array(quality, dtype=float)
    if missing:
        blank = rng.random(q.shape) < missing
        blank[:, 0] = False
        q[blank] = np.nan
    cost = np.array([[rule_cost(t, m) for m in MODELS] for t in texts])
    outcomes = Outcomes(tuple(ids), tuple(texts), tuple(tasks), MODELS, q, cost,
                        source=f"<two-cluster seed={seed}>")
    labels = np.asarray(tasks)
    return TwoCluster(outcomes, np.asarray(feats, dtype=np.float32),
                      np.flatnonzero(labels == "math"), np.flatnonzero(labels == "poetry"))


# -- environment -------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own embedding cache directory and never reaches a model hub."""
    cache_dir = tmp_path_factory.mktemp("polyroute-cache")
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return cache_dir


# -- data ----------------------------------------------------------------------------------------
@pytest.fixture
def two_cluster_factory() -> Callable[..., TwoCluster]:
    """The :func:`make_two_cluster` builder, for tests that need their own sizes or seeds."""
    return make_two_cluster


@pytest.fixture
def two_cluster() -> TwoCluster:
    """40 prompts (20 math, 20 poetry) × models A, B, C, with 8-dim embeddings."""
    return make_two_cluster(20)


@pytest.fixture
def two_cluster_split() -> tuple[TwoCluster, TwoCluster]:
    """Disjoint train (30 + 30 prompts) and test (10 + 10 prompts) tables from the same world."""
    return make_two_cluster(30, seed=0, prefix="tr"), make_two_cluster(10, seed=1, prefix="te")


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    """A ``models.json`` pricing A, B and C (dollars per million tokens)."""
    path = tmp_path / "models.json"
    path.write_text(json.dumps({m.name: {"input_price_per_mtok": m.input_price_per_mtok,
                                         "output_price_per_mtok": m.output_price_per_mtok}
                                for m in MODELS}))
    return path


@pytest.fixture
def pg_url():
    """The URL of a PostgreSQL store in a fresh schema of its own, dropped after the test
    (skipped, with the reason, where no PostgreSQL answers; see ``tests/pgschema.py``)."""
    from pgschema import fresh_schema

    with fresh_schema() as url:
        yield url

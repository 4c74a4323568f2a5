"""The embedding cache: keyed by featurizer id + text hash, shared across instances via SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from polyroute.features import CachedFeaturizer, Featurizer, default_cache_path


class CountingFeaturizer:
    """A fake featurizer: deterministic vectors, and a log of every text it was asked to embed."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.calls: list[list[str]] = []

    @property
    def id(self) -> str:
        return f"fake:{self.name}"

    @property
    def seen(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = [len(text), sum(map(ord, text)) % 97, len(self.name), text.count("e")]
        return out


def test_the_fake_is_a_featurizer() -> None:
    assert isinstance(CountingFeaturizer(), Featurizer)
    assert isinstance(CachedFeaturizer(CountingFeaturizer(), "unused.sqlite"), Featurizer)


def test_only_unseen_texts_are_encoded(tmp_path: Path) -> None:
    inner = CountingFeaturizer()
    cached = CachedFeaturizer(inner, tmp_path / "emb.sqlite")
    first = cached.encode(["alpha", "beta", "alpha"])
    assert inner.seen == ["alpha", "beta"]  # duplicates within a call are encoded once
    second = cached.encode(["beta", "gamma", "alpha"])
    assert inner.seen == ["alpha", "beta", "gamma"]
    assert inner.calls[-1] == ["gamma"]
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[2], first[0])
    assert second.dtype == np.float32 and second.shape == (3, 4)
    cached.encode(["gamma", "alpha"])
    assert len(inner.calls) == 2  # everything cached: the encoder is not called at all
    cached.close()


def test_cached_vectors_equal_fresh_ones(tmp_path: Path) -> None:
    texts = ["one", "two", "three"]
    fresh = CountingFeaturizer().encode(texts)
    cached = CachedFeaturizer(CountingFeaturizer(), tmp_path / "emb.sqlite")
    cached.encode(texts[:1])
    np.testing.assert_array_equal(cached.encode(texts)[1:], fresh[1:])


def test_cache_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "emb.sqlite"
    a = CachedFeaturizer(CountingFeaturizer(), path)
    vectors = a.encode(["persist me", "and me"])
    a.close()
    inner = CountingFeaturizer()
    b = CachedFeaturizer(inner, path)
    np.testing.assert_array_equal(b.encode(["and me", "persist me"]), vectors[::-1])
    assert inner.calls == []
    b.close()


def test_different_featurizer_id_means_different_entries(tmp_path: Path) -> None:
    path = tmp_path / "emb.sqlite"
    one, two = CountingFeaturizer("one"), CountingFeaturizer("two-longer")
    v1 = CachedFeaturizer(one, path).encode(["same text"])
    v2 = CachedFeaturizer(two, path).encode(["same text"])
    assert one.seen == ["same text"] and two.seen == ["same text"]
    assert not np.array_equal(v1, v2)
    assert CachedFeaturizer(two, path).id == "fake:two-longer"


def test_empty_input(tmp_path: Path) -> None:
    cached = CachedFeaturizer(CountingFeaturizer(), tmp_path / "emb.sqlite")
    assert cached.encode([]).shape == (0, 4)


def test_default_path_follows_the_environment(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_path() == tmp_path / "here" / "embeddings.sqlite"
    cached = CachedFeaturizer(CountingFeaturizer())
    cached.encode(["x"])
    assert (tmp_path / "here" / "embeddings.sqlite").is_file()
    cached.close()
    monkeypatch.delenv("POLYROUTE_CACHE_DIR")
    assert default_cache_path() == Path.home() / ".cache" / "polyroute" / "embeddings.sqlite"


def test_tests_never_use_the_home_cache() -> None:
    # The autouse fixture in conftest.py points the cache at a temporary directory.
    assert Path.home() / ".cache" not in default_cache_path().parents


def test_the_featurizer_id_is_read_once_per_encode(tmp_path: Path) -> None:
    """A fitted featurizer's id can be costly (TF-IDF hashes its SVD components): keys for a
    batch of texts must not recompute it per text."""

    class CountingId(CountingFeaturizer):
        reads = 0

        @property
        def id(self) -> str:
            type(self).reads += 1
            return "fake:counted"

    inner = CountingId()
    CachedFeaturizer(inner, tmp_path / "c.sqlite").encode([f"text {i}" for i in range(50)])
    assert CountingId.reads <= 2


def test_encode_in_batches_equals_one_call_and_stores_each_batch(tmp_path: Path) -> None:
    from polyroute.features import encode_in_batches

    texts = [f"prompt {i} " + "e" * (i % 5) for i in range(23)] + ["prompt 0 "]  # one repeat
    inner = CountingFeaturizer()
    cached = CachedFeaturizer(inner, tmp_path / "c.sqlite")
    out = encode_in_batches(cached, texts, batch_size=5)
    np.testing.assert_array_equal(out, CountingFeaturizer().encode(texts))
    assert [len(c) for c in inner.calls] == [5, 5, 5, 5, 3]  # the repeat was already cached
    again = encode_in_batches(cached, texts, batch_size=7)
    np.testing.assert_array_equal(again, out)
    assert len(inner.calls) == 5  # everything came from the cache
    cached.close()

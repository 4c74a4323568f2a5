"""The no-model TF-IDF/LSA featurizer: fitted on training prompts, saved beside the router."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyroute.errors import DataError, NotFittedError, RouterError
from polyroute.features import FittableFeaturizer, TfidfFeaturizer, make_featurizer


def test_encode_before_fit_raises() -> None:
    f = TfidfFeaturizer()
    assert f.id == "tfidf:unfitted"
    with pytest.raises(NotFittedError, match="TfidfFeaturizer"):
        f.encode(["hello"])
    with pytest.raises(NotFittedError):
        f.save(Path("."))


def test_fit_encode_shapes_and_norms(two_cluster) -> None:
    texts = list(two_cluster.outcomes.prompts)
    f = TfidfFeaturizer(dim=16).fit(texts)
    assert isinstance(f, FittableFeaturizer) and f.needs_fit
    x = f.encode(texts[:5])
    assert x.shape == (5, 16) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert f.encode([]).shape == (0, 16)
    assert f.id.startswith("tfidf:16:")


def test_dimension_is_capped_by_the_data() -> None:
    texts = ["the cat sat", "the cat ran", "a dog sat", "a dog ran"]
    x = TfidfFeaturizer(dim=256).fit(texts).encode(texts)
    assert x.shape[0] == 4 and 1 <= x.shape[1] <= 3


def test_separates_the_two_clusters(two_cluster) -> None:
    o = two_cluster.outcomes
    f = TfidfFeaturizer().fit(o.prompts)
    x = f.encode(o.prompts)
    math, poetry = x[two_cluster.math_rows], x[two_cluster.poetry_rows]
    within = float((math @ math.T).mean())
    across = float((math @ poetry.T).mean())
    assert within > across + 0.3


def test_fit_is_deterministic(two_cluster) -> None:
    texts = two_cluster.outcomes.prompts
    a, b = TfidfFeaturizer().fit(texts), TfidfFeaturizer().fit(texts)
    assert a.id == b.id
    np.testing.assert_array_equal(a.encode(texts), b.encode(texts))


def test_save_load_round_trip(tmp_path: Path, two_cluster, two_cluster_factory) -> None:
    f = TfidfFeaturizer(dim=32, max_chars=500).fit(two_cluster.outcomes.prompts)
    f.save(tmp_path)
    g = TfidfFeaturizer.load(tmp_path)
    assert g.id == f.id
    assert (g.dim, g.max_chars) == (32, 500)
    unseen = list(two_cluster_factory(5, seed=9).outcomes.prompts) + ["entirely new words"]
    np.testing.assert_allclose(g.encode(unseen), f.encode(unseen), atol=1e-6)


def test_load_from_an_empty_directory_is_a_router_error(tmp_path: Path) -> None:
    with pytest.raises(RouterError, match=str(tmp_path)):
        TfidfFeaturizer.load(tmp_path)


def test_make_featurizer_knows_tfidf() -> None:
    assert isinstance(make_featurizer("tfidf"), TfidfFeaturizer)


@pytest.mark.parametrize("texts", [
    pytest.param(["only one prompt"], id="one-prompt"),
    pytest.param(["alpha beta", "gamma delta"], id="no-shared-word"),
    pytest.param(["hello world", "hello there"], id="one-shared-word"),
    pytest.param(["x", "x", "x"], id="no-words"),
])
def test_too_little_text_is_a_data_error(texts: list[str]) -> None:
    with pytest.raises(DataError, match=f"on {len(texts)} prompt"):
        TfidfFeaturizer().fit(texts)


def test_encoding_reuses_the_projection_and_identity_once_fitted() -> None:
    """The fitted state is hashed and transposed once, not per call (both used to cost a full
    pass over the projection for every text looked up in the cache)."""
    texts = [f"prompt number {i} about {w}" for i, w in enumerate(["cats", "dogs", "math"] * 5)]
    f = TfidfFeaturizer(dim=4).fit(texts)
    first = f.encode(texts[:3])
    assert f._projection() is f._projection()
    ident = f.id
    assert f.id is ident
    np.testing.assert_allclose(f.encode(texts[:3]), first)
    # Exactly what the float32 product gave before, within float32 rounding.
    sparse = f._vectorizer.transform(texts[:3])
    old = np.asarray(sparse @ f.components_.T, dtype=np.float32)
    old /= np.maximum(np.linalg.norm(old, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(first, old, rtol=1e-5, atol=1e-6)


def _standard_counts(v, docs):
    from sklearn.feature_extraction.text import CountVectorizer

    counts = CountVectorizer.transform(v, docs).astype(np.float64)
    counts.sort_indices()
    return counts


def _same_csr(a, b) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


@pytest.fixture(scope="module")
def bundled_tfidf():
    from polyroute.data import load_bundled
    from polyroute.features.text import focus_text

    docs = [focus_text(t) for t in load_bundled().prompts]
    return TfidfFeaturizer(dim=32).fit(docs[:3000]), docs


def test_term_counts_match_scikit_learns_on_every_bundled_prompt(bundled_tfidf) -> None:
    from polyroute.features.tfidf import _count_terms, _plain_words

    f, docs = bundled_tfidf
    v = f._vectorizer
    assert _plain_words(v)
    assert _same_csr(_count_terms(v, docs), _standard_counts(v, docs))
    assert _count_terms(v, []).shape == (0, len(v.vocabulary_))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(list("ab AB 12 _-.'\t\néÉß中😀\x00İ") +
                                         ["the", "of the", "what is", "x" * 30]),
                         max_size=60).map("".join), max_size=5))
def test_term_counts_match_scikit_learns_on_fuzzed_text(bundled_tfidf, docs) -> None:
    from polyroute.features.tfidf import _count_terms

    v = bundled_tfidf[0]._vectorizer
    assert _same_csr(_count_terms(v, docs), _standard_counts(v, docs))


def test_a_vectorizer_configured_otherwise_is_counted_the_standard_way(bundled_tfidf) -> None:
    from polyroute.features.tfidf import _plain_words

    f, docs = bundled_tfidf
    before = f.encode(docs[:20])
    f._vectorizer.set_params(stop_words="english")
    try:
        assert not _plain_words(f._vectorizer)
        after = f.encode(docs[:20])  # scikit-learn's own count drops the stop words
        assert not np.allclose(before, after)
    finally:
        f._vectorizer.set_params(stop_words=None)


def test_a_few_prompts_encode_as_a_large_batch_encodes_them(bundled_tfidf) -> None:
    from polyroute.features.tfidf import _EACH_UP_TO

    f, docs = bundled_tfidf
    batch = f.encode(docs[:64])  # the batched sparse product
    few = np.concatenate([f.encode(docs[i:i + _EACH_UP_TO]) for i in range(0, 64, _EACH_UP_TO)])
    np.testing.assert_allclose(few, batch, atol=1e-6)
    lone = f.encode(["zzzz qqqq"])  # no known term: a zero row, not a division by zero
    assert np.all(np.isfinite(lone)) and not lone.any()

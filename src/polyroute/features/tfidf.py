"""A no-model fallback: TF-IDF over word n-grams reduced by truncated SVD (LSA).

It has to be fitted on the training prompts, so its fitted state travels with a saved router.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polyroute.errors import DataError, NotFittedError, RouterError
from polyroute.features.text import DEFAULT_MAX_CHARS, focus_text

_STATE_JSON = "featurizer.json"
_STATE_NPZ = "featurizer.npz"
#: Batches of up to this many prompts are projected one prompt at a time (see ``_project_each``).
_EACH_UP_TO = 8


class TfidfFeaturizer:
    """LSA embeddings: TF-IDF (uni+bi-grams, sublinear tf) → ``dim`` SVD components, L2-normed."""

    needs_fit = True
    #: A batch costs the sum of its rows (sparse, nothing padded): the gateway's decision
    #: thread embeds a batch of any lengths in one call.
    pads_batches = False
    #: No model runs: a batch costs well under a millisecond a prompt, so the gateway may
    #: decide on its event loop (``router.decide_on: auto``).
    light = True

    def __init__(self, dim: int = 256, *, max_features: int = 50_000,
                 max_chars: int = DEFAULT_MAX_CHARS, random_state: int = 0) -> None:
        self.dim = dim
        self.max_features = max_features
        self.max_chars = max_chars
        self.random_state = random_state
        self._vectorizer = None
        self.components_: np.ndarray | None = None

    @property
    def id(self) -> str:
        """``tfidf:<dim>:<digest of the fitted projection>``, hashed once per fitted state
        (the projection is tens of MB: hashing it per call made every cached lookup slow)."""
        if self.components_ is None:
            return "tfidf:unfitted"
        cached = getattr(self, "_id", None)
        if cached is None or cached[0] is not self.components_:
            digest = hashlib.sha256(self.components_.tobytes()).hexdigest()[:12]
            cached = (self.components_, f"tfidf:{self.components_.shape[0]}:{digest}")
            self._id = cached
        return cached[1]

    def fit(self, texts: Sequence[str]) -> TfidfFeaturizer:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                     max_features=self.max_features)
        try:
            matrix = vectorizer.fit_transform([focus_text(t, self.max_chars) for t in texts])
            k = max(1, min(self.dim, matrix.shape[1] - 1, matrix.shape[0] - 1))
            svd = TruncatedSVD(n_components=k, random_state=self.random_state).fit(matrix)
        except ValueError as exc:  # too few prompts, or too few words shared between them
            raise DataError(f"cannot fit TF-IDF features on {len(texts)} prompt(s) ({exc}); it "
                            f"needs at least two words that each occur in two or more prompts: "
                            f"train on more prompts or use the minilm featurizer") from None
        self._vectorizer = vectorizer
        self.components_ = svd.components_.astype(np.float32)
        return self

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if self._vectorizer is None or self.components_ is None:
            raise NotFittedError("TfidfFeaturizer must be fitted on training prompts first")
        if not texts:
            return np.zeros((0, self.components_.shape[0]), dtype=np.float32)
        docs = [focus_text(t, self.max_chars) for t in texts]
        v = self._vectorizer
        if len(docs) <= _EACH_UP_TO and v.sublinear_tf and v.use_idf and _plain_words(v):
            dense = self._project_each(docs)
        else:
            dense = np.asarray(self._weighted_counts(docs) @ self._projection(),
                               dtype=np.float32)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.maximum(norms, 1e-12)

    def _project_each(self, docs: list[str]) -> np.ndarray:
        """The projected TF-IDF rows of a few ``docs``, one document at a time, without a sparse
        matrix: building one cost scipy ~0.1 ms of checks per call, more than a lone prompt's
        counting and projection together (0.30 against 0.15 ms; from 8 documents on the
        batched sparse product is cheaper, 0.09 against 0.11 ms each at 32)."""
        v, projection = self._vectorizer, self._projection()
        out = np.empty((len(docs), projection.shape[1]), dtype=np.float32)
        for row, doc in enumerate(docs):
            ids = _term_ids(v, doc)
            cols, counts = np.unique(ids[ids >= 0], return_counts=True)
            out[row] = ((1.0 + np.log(counts)) * v.idf_[cols]) @ projection[cols]
        return out

    def _weighted_counts(self, docs: list[str]):
        """The TF-IDF rows of ``docs`` before their L2 norm: ``1 + log(tf)`` times the idf.

        Why not ``TfidfVectorizer.transform``: for the one or few prompts of a routing decision,
        its input checks cost three times the counting itself (about 0.7 of 1 ms per prompt);
        and its row norm is redundant, since :meth:`encode` normalises the projected rows (the
        result differs by float32 rounding only). The counting itself is :func:`_count_terms`
        for the vectorizer :meth:`fit` makes; one configured otherwise goes the standard way.
        """
        from sklearn.feature_extraction.text import CountVectorizer

        v = self._vectorizer
        if not (v.sublinear_tf and v.use_idf):
            return v.transform(docs)
        counts = _count_terms(v, docs) if _plain_words(v) else \
            CountVectorizer.transform(v, docs).astype(np.float64)
        np.log(counts.data, out=counts.data)
        counts.data += 1.0
        counts.data *= v.idf_[counts.indices]
        return counts

    def _projection(self) -> np.ndarray:
        """``components_.T`` as C-contiguous float64, made once per fitted state: the sparse
        TF-IDF rows are float64, and multiplying them by the float32 transpose made scipy copy
        and upcast the whole (vocabulary × dim) matrix on every call."""
        cached = getattr(self, "_proj", None)
        if cached is None or cached[0] is not self.components_:
            assert self.components_ is not None
            cached = (self.components_,
                      np.ascontiguousarray(self.components_.T, dtype=np.float64))
            self._proj = cached
        return cached[1]

    def save(self, directory: Path) -> None:
        if self._vectorizer is None or self.components_ is None:
            raise NotFittedError("cannot save an unfitted TfidfFeaturizer")
        vocab = {term: int(i) for term, i in self._vectorizer.vocabulary_.items()}
        meta = {"kind": "tfidf", "dim": self.dim, "max_features": self.max_features,
                "max_chars": self.max_chars, "vocabulary": vocab}
        (directory / _STATE_JSON).write_text(json.dumps(meta))
        np.savez(directory / _STATE_NPZ, idf=self._vectorizer.idf_.astype(np.float64),
                 components=self.components_)

    @classmethod
    def load(cls, directory: Path) -> TfidfFeaturizer:
        from sklearn.feature_extraction.text import TfidfVectorizer

        try:
            meta = json.loads((directory / _STATE_JSON).read_text())
            with np.load(directory / _STATE_NPZ, allow_pickle=False) as arrays:
                idf, components = arrays["idf"], arrays["components"]
            self = cls(meta["dim"], max_features=meta["max_features"],
                       max_chars=meta["max_chars"])
            vocabulary = meta["vocabulary"]
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise RouterError(f"{directory}: cannot read the saved TF-IDF featurizer ({exc})") \
                from None
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=vocabulary)
        vectorizer.idf_ = idf
        self._vectorizer = vectorizer
        self.components_ = components
        return self


def _plain_words(v) -> bool:
    """Whether ``v`` counts lowercased words and word pairs of its token pattern and nothing
    else — the configuration :func:`_count_terms` reproduces."""
    return (v.analyzer == "word" and tuple(v.ngram_range) == (1, 2) and v.lowercase
            and v.preprocessor is None and v.tokenizer is None and v.stop_words is None
            and v.strip_accents is None and not v.binary and v.input == "content")


def _term_ids(v, doc: str) -> np.ndarray:
    """Vocabulary ids of ``doc``'s words and word pairs in a :func:`_plain_words` vectorizer
    ``v`` (-1 for those it does not know), one per occurrence."""
    import re  # its cache of compiled patterns keeps this compile a lookup
    from itertools import chain, repeat

    words = re.compile(v.token_pattern).findall(doc.lower())
    terms = chain(words, map(" ".join, zip(words, words[1:], strict=False)))
    return np.fromiter(map(v.vocabulary_.get, terms, repeat(-1)), dtype=np.int64)


def _count_terms(v, docs: Sequence[str]):
    """Term counts of ``docs`` over ``v``'s vocabulary, as ``CountVectorizer.transform`` gives
    them (float64 CSR, sorted indices) for a :func:`_plain_words` vectorizer.

    Why: scikit-learn counts in a Python loop over every word and pair with per-document dicts,
    ~0.08 ms of a 220-character prompt's 0.12 ms; here the lookups run in C (``map`` over the
    vocabulary's ``get``) and the counting in one ``np.unique`` for the whole batch. The tests
    compare both on every bundled prompt.
    """
    import scipy.sparse as sp

    width = len(v.vocabulary_)
    keys = []
    for row, doc in enumerate(docs):
        ids = _term_ids(v, doc)
        keys.append(ids[ids >= 0] + row * width)
    flat = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    unique, counts = np.unique(flat, return_counts=True)
    rows, cols = np.divmod(unique, width)
    indptr = np.searchsorted(rows, np.arange(len(docs) + 1))
    return sp.csr_matrix((counts.astype(np.float64), cols, indptr), shape=(len(docs), width))

"""Tuned static embeddings beside TF-IDF: fitted on the training prompts only, saved beside the
router, no model at request time.

The real inputs (model2vec's distillation of MiniLM, MiniLM's embeddings) take minutes and are
measured in benchmarks/cheap_featurizers.py; here a seeded random table over MiniLM's real
tokenizer stands in for the distillation and a bag-of-words projection for the teacher, which
is all the featurizer's own logic (map, tuning, lookup, concatenation, state) depends on."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from polyroute.errors import NotFittedError, RouterError
from polyroute.features import (
    FittableFeaturizer,
    StaticMiniLMFeaturizer,
    TunedStaticTfidfFeaturizer,
    load_saved_featurizer,
    make_featurizer,
)
from polyroute.features.onnx import minilm_directory
from polyroute.features.tuned import mean_rows, train_table, unit_rows
from polyroute.pipeline import Pipeline

SPEC = "minilm-static-tuned+tfidf"


def random_table(out: Path) -> None:
    """A model2vec model: MiniLM's tokenizer, seeded random 16-d rows."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_directory() / "tokenizer.json"))
    vectors = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 16))
    StaticModel(vectors.astype(np.float32), tokenizer, normalize=True).save_pretrained(str(out))


class WordTeacher:
    """A stand-in for MiniLM: each word a seeded random 12-d vector, a text their mean; it
    records every text it is asked to embed."""

    id = "teacher:words"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.seen.extend(texts)
        out = []
        for text in texts:
            words = text.lower().split() or [""]
            vecs = [np.random.default_rng(zlib.crc32(w.encode())).normal(size=12) for w in words]
            out.append(np.mean(vecs, axis=0))
        return unit_rows(np.asarray(out, dtype=np.float32))


@pytest.fixture
def static(tmp_path: Path) -> StaticMiniLMFeaturizer:
    return StaticMiniLMFeaturizer(directory=tmp_path / "models", build=random_table)


def make(static: StaticMiniLMFeaturizer, teacher: WordTeacher | None = None,
         **kwargs) -> TunedStaticTfidfFeaturizer:
    kwargs.setdefault("tfidf_dim", 8)
    return TunedStaticTfidfFeaturizer(static=static, teacher=teacher or WordTeacher(), **kwargs)


def test_unfitted_has_no_features() -> None:
    f = TunedStaticTfidfFeaturizer()
    assert isinstance(f, FittableFeaturizer) and f.needs_fit
    assert f.id == "static-tuned+tfidf:unfitted"
    with pytest.raises(NotFittedError):
        f.encode(["hello"])
    with pytest.raises(NotFittedError):
        f.save(Path("."))


def test_features_are_a_unit_static_part_beside_a_weighted_tfidf_part(static,
                                                                       two_cluster) -> None:
    texts = list(two_cluster.outcomes.prompts)
    f = make(static, tfidf_weight=2.0).fit(texts)
    x = f.encode(texts[:5] + ["entirely unseen words"])
    assert x.shape == (6, 12 + 8) == (6, f.dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x[:, :12], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(x[:5, 12:], axis=1), 2.0, atol=1e-5)
    assert f.encode([]).shape == (0, 20)
    assert f.id.startswith("static-tuned+tfidf@2:") and f.id.endswith(":focus1000")


def test_fit_reads_the_teacher_on_the_given_prompts_only(static, two_cluster) -> None:
    texts = list(two_cluster.outcomes.prompts)
    teacher = WordTeacher()
    f = make(static, teacher).fit(texts[:30])
    assert teacher.seen == texts[:30]
    f.encode(texts[30:])  # request time: no teacher
    assert teacher.seen == texts[:30]
    vocabulary = set(f.tfidf_._vectorizer.vocabulary_)
    assert "gentle" in vocabulary and "zebra" not in vocabulary


def test_tuning_moves_training_prompts_towards_the_teacher(static, two_cluster) -> None:
    texts = list(two_cluster.outcomes.prompts)
    teacher = WordTeacher()
    target = teacher.encode(texts)
    mapped = make(static, epochs=0).fit(texts)
    tuned = make(static, epochs=50, lr=1e-2).fit(texts)

    def agreement(f: TunedStaticTfidfFeaturizer) -> float:
        return float(np.mean(np.sum(f.encode(texts)[:, :12] * target, axis=1)))

    assert 1 - agreement(tuned) < (1 - agreement(mapped)) / 2  # the ridge map's residual
    assert tuned.id != mapped.id


def test_rows_of_pieces_no_prompt_contains_are_left_as_initialised() -> None:
    init = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    ids = [np.array([1, 2]), np.array([2, 3, 3]), np.array([], dtype=np.int64)]
    target = np.random.default_rng(1).normal(size=(3, 4))
    table = train_table(init, ids, target, epochs=5, lr=1e-2)
    np.testing.assert_array_equal(table[[0, 4, 5, 6, 7, 8, 9]], init[[0, 4, 5, 6, 7, 8, 9]])
    assert not np.allclose(table[[1, 2, 3]], init[[1, 2, 3]])
    before = np.sum(unit_rows(mean_rows(init, ids[:2])) * unit_rows(target[:2]))
    after = np.sum(unit_rows(mean_rows(table, ids[:2])) * unit_rows(target[:2]))
    assert after > before


def test_fit_is_deterministic_and_the_seed_matters(static, two_cluster) -> None:
    texts = list(two_cluster.outcomes.prompts)
    a, b = make(static).fit(texts), make(static).fit(texts)
    assert a.id == b.id
    np.testing.assert_array_equal(a.encode(texts), b.encode(texts))
    assert make(static, seed=1).fit(texts).id != a.id


def test_save_load_round_trip_needs_neither_the_table_nor_the_teacher(
        tmp_path: Path, static, two_cluster, two_cluster_factory) -> None:
    f = make(static, tfidf_weight=1.5, max_chars=500).fit(two_cluster.outcomes.prompts)
    (tmp_path / "router").mkdir()
    f.save(tmp_path / "router")
    g = TunedStaticTfidfFeaturizer.load(tmp_path / "router")
    assert g.static is None and g.teacher is None
    assert g.id == f.id and (g.tfidf_weight, g.max_chars) == (1.5, 500)
    unseen = list(two_cluster_factory(5, seed=9).outcomes.prompts) + ["entirely new words"]
    np.testing.assert_allclose(g.encode(unseen), f.encode(unseen), atol=1e-6)
    assert load_saved_featurizer(SPEC, tmp_path / "router").id == f.id


def test_a_router_on_it_saves_and_loads(tmp_path: Path, static, two_cluster,
                                        monkeypatch) -> None:
    import polyroute.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "make_featurizer", lambda spec: make(static))
    o = two_cluster.outcomes
    pipe = Pipeline("knn", featurizer=SPEC, cache=False).fit(o)
    pipe.save(tmp_path / "router")
    again = Pipeline.load(tmp_path / "router", cache=False)
    texts = ["What is 3 plus 4? Compute the sum.", "Write a short poem about the sea."]
    np.testing.assert_allclose(again.estimate(texts).quality, pipe.estimate(texts).quality)


def test_load_from_an_empty_directory_is_a_router_error(tmp_path: Path) -> None:
    with pytest.raises(RouterError, match=str(tmp_path)):
        TunedStaticTfidfFeaturizer.load(tmp_path)


def test_make_featurizer_knows_it() -> None:
    f = make_featurizer(SPEC)
    assert isinstance(f, TunedStaticTfidfFeaturizer) and f.tfidf_weight == 2.0


def test_a_narrower_width_projects_both_parts_and_keeps_dot_products_roughly(
        tmp_path: Path, static, two_cluster) -> None:
    """``width`` below the parts' width: the training features' top singular directions, saved
    with the router; neighbours by cosine mostly survive the projection."""
    texts = list(two_cluster.outcomes.prompts)
    wide = make(static, width=None).fit(texts)
    narrow = make(static, width=10).fit(texts)
    x, y = wide.encode(texts), narrow.encode(texts)
    assert y.shape == (len(texts), 10) == (len(texts), narrow.dim) and y.dtype == np.float32
    assert narrow.id != wide.id
    # Projected onto its top directions, a training vector keeps most of its length.
    assert np.mean(np.linalg.norm(y, axis=1) / np.linalg.norm(x, axis=1)) > 0.8
    near = lambda z: np.argsort(-(unit_rows(z) @ unit_rows(z).T), axis=1)[:, 1]  # noqa: E731
    assert np.mean(near(x) == near(y)) > 0.5
    (tmp_path / "r").mkdir()
    narrow.save(tmp_path / "r")
    back = TunedStaticTfidfFeaturizer.load(tmp_path / "r")
    assert back.id == narrow.id and back.dim == 10
    np.testing.assert_allclose(back.encode(texts[:5]), narrow.encode(texts[:5]), atol=1e-6)

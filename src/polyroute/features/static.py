"""Static embeddings distilled from all-MiniLM-L6-v2 (model2vec): a lookup and a mean per prompt.

model2vec runs the shipped MiniLM once over every word piece of its own vocabulary, reduces the
outputs by PCA to 256 dimensions and down-weights frequent pieces (SIF). A prompt's embedding is
then the normalised mean of its pieces' rows: tens of microseconds instead of milliseconds, no
attention, no model at request time. It is a different embedding space from ``minilm`` (it
loses word order and context), so a router must be trained on it; how much routing quality that
costs is measured in ``benchmarks/featurizer_speed_quality.py``.

The distilled table is built at first use (about two minutes on one core), cached under the
polyroute cache directory, and its SHA-256 is part of the featurizer id, like the ONNX export's.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from polyroute.errors import ConfigError
from polyroute.features.artifacts import DerivedModel, build_once, mismatch_hint, models_dir
from polyroute.features.onnx import minilm_directory
from polyroute.features.sentence import DEFAULT_MODEL
from polyroute.features.text import DEFAULT_MAX_CHARS, focus_text

#: Width of the distilled table (model2vec's default PCA size).
STATIC_DIM = 256


def distill_minilm(target: Path) -> None:
    """Distill the shipped MiniLM into a model2vec static model saved at ``target``.

    model2vec's ``distill`` extra needs ``skeletoken`` (and torch and transformers, which
    polyroute already has); it reads the local model directory, nothing is downloaded.
    """
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise ConfigError(f"the minilm-static featurizer is distilled with model2vec, whose "
                          f"distillation needs skeletoken: pip install 'skeletoken>=0.6,<0.7' "
                          f"({exc})") from None
    import torch

    threads = torch.get_num_threads()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = distill(model_name=str(minilm_directory()), pca_dims=STATIC_DIM,
                            device="cpu")
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(str(target))


class StaticMiniLMFeaturizer:
    """Mean of static word-piece embeddings distilled from MiniLM (see the module docstring).

    ``build`` makes the table at the path it is given (default :func:`distill_minilm`); it is a
    parameter so that the caching can be tested without a two-minute distillation.
    """

    #: A batch costs the sum of its rows (a lookup and a mean, nothing padded): the gateway's
    #: decision thread embeds a batch of any lengths in one call.
    pads_batches = False
    #: No model runs: a batch costs well under a millisecond a prompt, so the gateway may
    #: decide on its event loop (``router.decide_on: auto``).
    light = True

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS, directory: Path | None = None,
                 build: Callable[[Path], None] = distill_minilm) -> None:
        self.max_chars = max_chars
        self.directory = directory
        self.build = build
        self._model = None
        self.table = DerivedModel(lambda: build_once(
            (self.directory or models_dir()) / "minilm-static", self.build))

    @property
    def model_path(self) -> Path:
        return self.table.path

    @property
    def id(self) -> str:
        return f"static:{DEFAULT_MODEL}:{self.table.tag()}:focus{self.max_chars}"

    def mismatch_hint(self, trained_id: str) -> str | None:
        return mismatch_hint(self.id, trained_id, f"distillation of {DEFAULT_MODEL}",
                             self.model_path)

    def _load(self):
        if self._model is None:
            from model2vec import StaticModel

            try:
                self._model = StaticModel.from_pretrained(str(self.model_path), normalize=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load the static embeddings at {self.model_path} "
                                  f"({exc}); delete that directory to rebuild it") from None
        return self._model

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode([focus_text(t, self.max_chars) for t in texts],
                               use_multiprocessing=False, show_progress_bar=False)
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # a text of unknown pieces only
        return vectors / np.maximum(norms, 1e-12)

    @property
    def dim(self) -> int:
        return int(self._load().dim)

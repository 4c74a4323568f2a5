"""Static word-piece embeddings tuned towards MiniLM on the training prompts, beside TF-IDF.

``minilm-static`` (model2vec's distillation) routes as well as MiniLM on unseen tasks but loses
about 0.012 AIQ in cross-validation, where a test prompt's nearest training prompts are often of
its own task and phrasing; TF-IDF sees the phrasing but not the meaning. This featurizer has
both, and costs a tokenization, two lookups and a mean at request time (no transformer):

* a 384-d row per word piece, tokenlearn-style: the distilled table mapped to MiniLM's space by
  a ridge regression of each training prompt's mean row onto its MiniLM embedding, then every
  row fitted (a few epochs of sparse Adam, cosine loss) so that a training prompt's mean row
  points where MiniLM puts the prompt. Only the training prompts and their MiniLM embeddings
  are read; pieces no training prompt contains keep the mapped distilled row;
* the project's TF-IDF + SVD features (:class:`~polyroute.features.tfidf.TfidfFeaturizer`),
  fitted on the same prompts.

A prompt's features are the unit mean row and ``tfidf_weight`` × its unit TF-IDF row, side by
side (so the cosine the kNN router takes weighs the two by 1 : ``tfidf_weight``²). Fitting
needs MiniLM (through the embedding cache) and torch; encoding needs neither. The fitted table,
the tokenizer and the TF-IDF state are saved beside the router, so a saved router does not
depend on the local distillation. Measured in ``benchmarks/cheap_featurizers.py``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polyroute.errors import NotFittedError, RouterError
from polyroute.features.base import Featurizer
from polyroute.features.static import StaticMiniLMFeaturizer
from polyroute.features.text import DEFAULT_MAX_CHARS, focus_text
from polyroute.features.tfidf import TfidfFeaturizer
from polyroute.features.wordpiece import WordPieces

#: Word pieces a prompt is cut to (model2vec's default, which the distilled table was made for).
MAX_PIECES = 512
_STATE_JSON = "tuned_static.json"
_STATE_NPZ = "tuned_static.npz"
_TOKENIZER = "tuned_static_tokenizer.json"


def ridge_map(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """``W`` (with a last bias row) minimising |[x 1] W − y|² + alpha |W|²."""
    x1 = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    a = x1.T @ x1 + alpha * np.eye(x1.shape[1])
    return np.linalg.solve(a, x1.T @ np.asarray(y, dtype=np.float64)).astype(np.float32)


def mean_rows(table: np.ndarray, ids: Sequence[np.ndarray]) -> np.ndarray:
    """Each id list's mean row of ``table`` (float32; zeros for an empty list). Pass a float32
    ``table``: rows of another dtype are converted on every call, which cost more than the
    lookup (float16 rows: 0.16 against 0.03 ms for a prompt's ~100 pieces)."""
    out = np.zeros((len(ids), table.shape[1]), dtype=np.float32)
    for i, row in enumerate(ids):
        if len(row):
            out[i] = table[row].mean(axis=0, dtype=np.float32)
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def train_table(init: np.ndarray, ids: Sequence[np.ndarray], target: np.ndarray, *,
                epochs: int, lr: float, batch: int = 128, seed: int = 0) -> np.ndarray:
    """Fit the rows of ``init`` so that each id list's mean row has the highest cosine to its
    ``target`` row; rows no list contains keep their ``init`` value.

    Sparse Adam: a step moves only the rows its batch touches, so an epoch over ~4,000 prompts
    costs about half a second on one core, where dense Adam over the whole table took eight.
    The batch order is seeded (nothing else is random): the same inputs give the same table.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bag = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(init.astype(np.float32)),
                                                    freeze=False, mode="mean", sparse=True)
        y = torch.nn.functional.normalize(torch.from_numpy(np.asarray(target, np.float32)),
                                          dim=1)
        opt = torch.optim.SparseAdam(list(bag.parameters()), lr=lr)
        rng = np.random.default_rng(seed)
        keep = np.array([i for i in range(len(ids)) if len(ids[i])], dtype=np.int64)
        for _ in range(epochs):
            order = rng.permutation(keep)
            for start in range(0, len(order), batch):
                rows = order[start:start + batch]
                flat = torch.from_numpy(np.concatenate([ids[r] for r in rows]))
                offsets = torch.from_numpy(np.cumsum([0] + [len(ids[r]) for r in rows[:-1]]))
                out = torch.nn.functional.normalize(bag(flat, offsets), dim=1)
                loss = (1 - (out * y[torch.from_numpy(rows)]).sum(dim=1)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return bag.weight.detach().numpy().astype(np.float32)
    finally:
        torch.set_num_threads(threads)


class TunedStaticTfidfFeaturizer:
    """Tuned static embeddings beside TF-IDF (see the module docstring); fitted per router.

    ``static`` supplies the distilled table and its tokenizer (default: ``minilm-static``'s,
    built at first use) and ``teacher`` the embeddings the table is tuned towards (default:
    ``minilm`` behind the embedding cache); both are read by :meth:`fit` only.
    """

    needs_fit = True
    #: A batch costs the sum of its rows (lookups and sparse rows, nothing padded).
    pads_batches = False
    #: No model runs: a batch costs well under a millisecond a prompt, so the gateway may
    #: decide on its event loop (``router.decide_on: auto``).
    light = True

    def __init__(self, *, tfidf_weight: float = 2.0, epochs: int = 5, lr: float = 3e-3,
                 alpha: float = 1.0, tfidf_dim: int = 256, width: int | None = 256,
                 seed: int = 0,
                 max_chars: int = DEFAULT_MAX_CHARS,
                 static: StaticMiniLMFeaturizer | None = None,
                 teacher: Featurizer | None = None) -> None:
        self.tfidf_weight = tfidf_weight
        self.epochs = epochs
        self.lr = lr
        self.alpha = alpha
        self.tfidf_dim = tfidf_dim
        #: Width of the features: the two parts' principal directions on the training prompts
        #: (None: both parts side by side, 384 + ``tfidf_dim``). Why: a kNN decision reads every
        #: training vector, so its cost grows with the width — at 640 floats a single query
        #: streams 14 MB for 5,489 prompts.
        self.width = width
        self.seed = seed
        self.max_chars = max_chars
        self.static = static
        self.teacher = teacher
        self.table_: np.ndarray | None = None
        self.tfidf_: TfidfFeaturizer | None = None
        #: (384 + tfidf_dim) × dim projection onto the training features' top right singular
        #: vectors, or None (see ``width``).
        self.projection_: np.ndarray | None = None
        self._pieces: WordPieces | None = None
        #: ``table_`` as float32 (it is float16 at rest), and the array it was made from.
        self._table32: tuple[np.ndarray, np.ndarray] | None = None
        self._tokenizer_json: str | None = None
        self._id: str | None = None

    # -- identity ----------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """``static-tuned+tfidf@<weight>:<digest of the table>:<TF-IDF id>:focus<chars>``,
        hashed once per fit or load (the table is ~20 MB)."""
        if self.table_ is None or self.tfidf_ is None:
            return "static-tuned+tfidf:unfitted"
        if self._id is None:
            digest = hashlib.sha256(self.table_.tobytes())
            digest.update((self._tokenizer_json or "").encode())
            if self.projection_ is not None:
                digest.update(self.projection_.tobytes())
            self._id = (f"static-tuned+tfidf@{self.tfidf_weight:g}:"
                        f"{digest.hexdigest()[:12]}:{self.tfidf_.id}:focus{self.max_chars}")
        return self._id

    @property
    def dim(self) -> int:
        if self.table_ is None or self.tfidf_ is None or self.tfidf_.components_ is None:
            raise NotFittedError("TunedStaticTfidfFeaturizer must be fitted first")
        if self.projection_ is not None:
            return int(self.projection_.shape[1])
        return int(self.table_.shape[1] + self.tfidf_.components_.shape[0])

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, texts: Sequence[str]) -> TunedStaticTfidfFeaturizer:
        """Tune the table towards the teacher's embeddings of ``texts`` and fit TF-IDF on them
        (nothing else is read)."""
        texts = list(texts)
        static = self.static or StaticMiniLMFeaturizer(max_chars=self.max_chars)
        model = static._load()
        self._set_tokenizer(model.tokenizer.to_str())
        teacher = self.teacher
        if teacher is None:
            from polyroute.features import make_featurizer, with_cache

            teacher = with_cache(make_featurizer("minilm"), None)
        target = np.asarray(teacher.encode(texts), dtype=np.float32)
        distilled = np.asarray(model.embedding, dtype=np.float32)
        ids = self._ids(texts)
        w = ridge_map(mean_rows(distilled, ids), target, self.alpha)
        init = distilled @ w[:-1] + w[-1]
        table = train_table(init, ids, target, epochs=self.epochs, lr=self.lr, seed=self.seed)
        tfidf = TfidfFeaturizer(self.tfidf_dim, max_chars=self.max_chars,
                                random_state=self.seed).fit(texts)
        # float16 at rest halves a saved router; rounded here so that the fitted and the
        # loaded featurizer are the same (and share an id).
        self.table_ = table.astype(np.float16)
        self.tfidf_ = tfidf
        self.projection_ = None
        raw = self._side_by_side(texts)
        if self.width is not None and self.width < raw.shape[1]:
            # Uncentred (like TruncatedSVD): the projection keeps dot products, which the
            # kNN router's cosine reads, as far as ``width`` directions can.
            _, _, vt = np.linalg.svd(raw.astype(np.float64), full_matrices=False)
            self.projection_ = np.ascontiguousarray(vt[:self.width].T, dtype=np.float32)
        self._id = None
        return self

    def _set_tokenizer(self, tokenizer_json: str) -> None:
        self._pieces = WordPieces(tokenizer_json, MAX_PIECES)
        self._tokenizer_json = tokenizer_json

    def _ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Word-piece ids of each text's focus (no special pieces; unknown pieces dropped)."""
        assert self._pieces is not None
        return self._pieces.ids([focus_text(t, self.max_chars) for t in texts])

    def _working_table(self) -> np.ndarray:
        """``table_`` in float32, converted once (~45 MB): converting the rows a batch reads
        on every call cost more than the lookup itself."""
        assert self.table_ is not None
        if self._table32 is None or self._table32[0] is not self.table_:
            self._table32 = (self.table_, np.ascontiguousarray(self.table_, dtype=np.float32))
        return self._table32[1]

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if self.table_ is None or self.tfidf_ is None:
            raise NotFittedError("TunedStaticTfidfFeaturizer must be fitted on training "
                                 "prompts first")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        raw = self._side_by_side(texts)
        return raw if self.projection_ is None else raw @ self.projection_

    def _side_by_side(self, texts: Sequence[str]) -> np.ndarray:
        """The unit mean row beside ``tfidf_weight`` × the unit TF-IDF row."""
        assert self.table_ is not None and self.tfidf_ is not None
        static = unit_rows(mean_rows(self._working_table(), self._ids(texts)))
        lexical = self.tfidf_.encode(texts)
        return np.hstack([static, self.tfidf_weight * lexical]).astype(np.float32)

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """The table, the tokenizer and the settings as ``tuned_static.*``, TF-IDF's state as
        its own ``featurizer.*`` files, all beside the router."""
        if self.table_ is None or self.tfidf_ is None or self._tokenizer_json is None:
            raise NotFittedError("cannot save an unfitted TunedStaticTfidfFeaturizer")
        meta = {"kind": "static-tuned+tfidf", "tfidf_weight": self.tfidf_weight,
                "epochs": self.epochs, "lr": self.lr, "alpha": self.alpha,
                "tfidf_dim": self.tfidf_dim, "width": self.width, "seed": self.seed,
                "max_chars": self.max_chars}
        (directory / _STATE_JSON).write_text(json.dumps(meta))
        (directory / _TOKENIZER).write_text(self._tokenizer_json)
        arrays = {"table": self.table_}
        if self.projection_ is not None:
            arrays["projection"] = self.projection_
        np.savez(directory / _STATE_NPZ, **arrays)
        self.tfidf_.save(directory)

    @classmethod
    def load(cls, directory: Path) -> TunedStaticTfidfFeaturizer:
        try:
            meta = json.loads((directory / _STATE_JSON).read_text())
            tokenizer_json = (directory / _TOKENIZER).read_text()
            with np.load(directory / _STATE_NPZ, allow_pickle=False) as arrays:
                table = arrays["table"]
                projection = arrays["projection"] if "projection" in arrays.files else None
            self = cls(tfidf_weight=meta["tfidf_weight"], epochs=meta["epochs"], lr=meta["lr"],
                       alpha=meta["alpha"], tfidf_dim=meta["tfidf_dim"],
                       width=meta.get("width"), seed=meta["seed"],
                       max_chars=meta["max_chars"])
            self._set_tokenizer(tokenizer_json)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise RouterError(f"{directory}: cannot read the saved tuned static featurizer "
                              f"({exc})") from None
        self.table_ = table
        self.projection_ = projection
        self.tfidf_ = TfidfFeaturizer.load(directory)
        return self

"""A trained router ready to use: featurizer + router + cost model, saved as one directory.

This is what ``polyroute train`` writes, ``polyroute route`` reads and the gateway serves. The
featurizer's id is recorded and checked on load: a router is meaningless in another embedding space.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polyroute.data.outcomes import ModelInfo, Outcomes
from polyroute.errors import RouterError
from polyroute.features import (
    DEFAULT_FEATURIZER,
    CachedFeaturizer,
    Featurizer,
    load_saved_featurizer,
    make_featurizer,
    with_cache,
)
from polyroute.routers import CostModel, Estimates, Router, make_router

PIPELINE_FILE = "polyroute.json"
FORMAT_VERSION = 1


class Pipeline:
    """Routes texts: embed (cached), estimate quality, predict cost.

    ``featurizer`` is the spec string (``minilm``, ``tfidf`` or a sentence-transformers model);
    ``cache`` is the embedding cache path (``None`` = default location, ``False`` = no cache).
    """

    def __init__(self, router: Router | str, featurizer: str = DEFAULT_FEATURIZER,
                 cache: str | Path | None | bool = None,
                 router_params: dict[str, Any] | None = None) -> None:
        self.router = make_router(router, **(router_params or {})) if isinstance(router, str) \
            else router
        self.featurizer_spec = featurizer
        self._cache = cache
        self._featurizer: Featurizer | None = None
        self.cost_model_: CostModel | None = None
        #: ``router@digest`` of the saved directory this pipeline was loaded from or saved to
        #: (what the gateway logs when it switches routers); ``router@unsaved`` otherwise.
        self.identity = f"{self.router.name}@unsaved"

    # -- featurizer ----------------------------------------------------------------------------
    def _wrap(self, inner: Featurizer) -> Featurizer:
        return with_cache(inner, self._cache)

    @property
    def featurizer(self) -> Featurizer:
        if self._featurizer is None:
            self._featurizer = self._wrap(make_featurizer(self.featurizer_spec))
        return self._featurizer

    def _inner_featurizer(self) -> Featurizer:
        f = self.featurizer
        return f.inner if isinstance(f, CachedFeaturizer) else f

    # -- learning and estimating ---------------------------------------------------------------
    def fit(self, outcomes: Outcomes, *, features: np.ndarray | None = None,
            progress: bool = False) -> Pipeline:
        """Fit featurizer (if it learns), router and cost model on ``outcomes``.

        Pass ``features`` to reuse embeddings computed once for several routers (evaluation);
        the featurizer is then assumed fitted already.
        """
        if features is None:
            inner = self._inner_featurizer()
            if getattr(inner, "needs_fit", False):
                inner.fit(list(outcomes.prompts))
                self._featurizer = self._wrap(inner)
            features = self.featurizer.encode(list(outcomes.prompts), progress=progress)
        self.router.fit(outcomes, features)
        self.cost_model_ = CostModel.fit(outcomes)
        return self

    def estimate(self, texts: Sequence[str], *, features: np.ndarray | None = None) -> Estimates:
        """Estimates for ``texts``; pass ``features`` if they were already computed."""
        if self.cost_model_ is None:
            raise RouterError("this pipeline is not fitted: call fit() or Pipeline.load()")
        if features is None:
            features = self.featurizer.encode(list(texts))
        est = self.router.estimate(features)
        if est.cost is None:
            est = est.with_cost(self.cost_model_.predict(texts, est.models),
                                self.cost_model_.cost_scale)
        return est

    def add_model(self, info: ModelInfo, ask: Callable[[list[str]], Sequence[float]],
                  prompts: Sequence[str], budget: int = 100, **options: Any) -> list[int]:
        """Add a new candidate model from at most ``budget`` of its answers.

        The router (one with ``adds_models``, e.g. ``irt``) chooses which of ``prompts`` to ask,
        most informative first; ``ask(texts)`` returns the new model's quality on them (NaN for a
        failed call). The model's list prices join the cost model. Returns the asked indices.
        """
        if self.cost_model_ is None:
            raise RouterError("fit or load the pipeline before adding a model")
        if not self.router.adds_models:
            raise RouterError(f"router {self.router.name!r} cannot add a model from a few "
                              f"answers; use one that can (e.g. irt) or retrain")
        cost_model = self.cost_model_.with_model(info)
        texts = list(prompts)
        pool = self.featurizer.encode(texts)
        asked = self.router.add_model(info.name, lambda idx: ask([texts[i] for i in idx]), pool,
                                      budget, **options)
        self.cost_model_ = cost_model
        return [int(i) for i in asked]

    @property
    def models(self) -> tuple[str, ...]:
        if self.cost_model_ is None:
            raise RouterError("this pipeline is not fitted")
        return tuple(m.name for m in self.cost_model_.models)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        if self.cost_model_ is None:
            raise RouterError("cannot save an unfitted pipeline")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.router.save(directory)
        inner = self._inner_featurizer()
        if getattr(inner, "needs_fit", False):
            inner.save(directory)
        meta = {"format_version": FORMAT_VERSION, "router": self.router.name,
                "featurizer": self.featurizer_spec, "featurizer_id": inner.id,
                "cost_model": self.cost_model_.to_dict()}
        (directory / PIPELINE_FILE).write_text(json.dumps(meta, indent=1))
        self.identity = _identity(self.router.name, directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path, cache: str | Path | None | bool = None) -> Pipeline:
        directory = Path(directory)
        meta_path = directory / PIPELINE_FILE
        if not meta_path.is_file():
            raise RouterError(f"{directory}: not a trained router directory (no {PIPELINE_FILE}); "
                              f"create one with `polyroute train`")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise RouterError(f"{meta_path}: corrupt ({exc.msg})") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise RouterError(f"{meta_path}: format version {meta.get('format_version')} is not "
                              f"supported (expected {FORMAT_VERSION})")
        pipeline = cls(Router.load(directory), featurizer=meta["featurizer"], cache=cache)
        inner = load_saved_featurizer(meta["featurizer"], directory)
        if inner.id != meta["featurizer_id"]:
            hint = getattr(inner, "mismatch_hint", lambda _trained: None)(meta["featurizer_id"])
            raise RouterError(f"{directory}: router was trained with featurizer "
                              f"{meta['featurizer_id']!r} but {inner.id!r} was loaded"
                              + (f": {hint}" if hint else ""))
        pipeline._featurizer = pipeline._wrap(inner)
        pipeline.cost_model_ = CostModel.from_dict(meta["cost_model"])
        pipeline.identity = _identity(pipeline.router.name, directory)
        return pipeline


def _identity(router: str, directory: Path) -> str:
    """``router@`` + the first 12 hex digits of a SHA-256 over the saved files (names and
    contents, in name order): two saves of different state never share an identity."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{router}@{digest.hexdigest()[:12]}"

"""Turn logged requests with feedback into an outcomes file the router can be retrained on.

Each feedback becomes one known cell of the long format: the request's routed text is the prompt,
the backend that answered is the model, the score is the quality, the charged cost is the cost.
Production traffic is partial feedback (one model per prompt); the routers' NaN handling and the
quality-imputation in ``routers.base`` are made for exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyroute.data import ModelInfo, Outcomes, save_outcomes
from polyroute.data.loaders import outcomes_format
from polyroute.errors import StoreError
from polyroute.store.base import Store


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    models: tuple[str, ...]


def feedback_outcomes(store: Store) -> Outcomes:
    """The store's feedback as an :class:`Outcomes` table (unknown cells are NaN)."""
    examples = list(store.feedback_examples())
    if not examples:
        raise StoreError("no logged request has feedback yet (POST /v1/feedback), or their "
                         "prompts were not recorded (store.record_prompts)")
    models = sorted({e.model for e in examples})
    col = {m: j for j, m in enumerate(models)}
    n, m = len(examples), len(models)
    quality = np.full((n, m), np.nan)
    cost = np.full((n, m), np.nan)
    latency = np.full((n, m), np.nan)
    for i, e in enumerate(examples):
        j = col[e.model]
        quality[i, j] = e.score
        cost[i, j] = e.cost
        if e.latency_s is not None:
            latency[i, j] = e.latency_s
    return Outcomes(
        prompt_ids=tuple(e.request_id for e in examples),
        prompts=tuple(e.prompt for e in examples),
        tasks=tuple(e.profile or "gateway" for e in examples),
        # Prices are not part of the long format (every cell carries its recorded cost).
        models=tuple(ModelInfo(name, 0.0, 0.0) for name in models),
        quality=quality,
        cost=cost,
        latency=None if np.all(np.isnan(latency)) else latency,
        source="gateway feedback",
    )


def export_feedback(store: Store, path: str | Path) -> ExportResult:
    """Write the store's feedback to ``path`` in the long format, as JSONL, CSV or Parquet as
    the file name asks (see :func:`~polyroute.data.save_outcomes`)."""
    outcomes_format(path)  # an unknown extension fails before the store is read
    outcomes = feedback_outcomes(store)
    written = save_outcomes(outcomes, path)
    return ExportResult(written, outcomes.n_prompts, outcomes.model_names)

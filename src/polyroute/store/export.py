"""Turn logged requests with feedback into an outcomes file the router can be retrained on.

Each feedback becomes one known cell of the long format: the request's routed text is the prompt,
the backend that answered is the model, the score is the quality, the charged cost is the cost.
Production traffic is partial feedback (one model per prompt); the routers' NaN handling and the
quality-imputation in ``routers.base`` are made for exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyroute.data import Outcomes, save_outcomes
from polyroute.data.chunked import outcomes_from_batches
from polyroute.data.loaders import outcomes_format
from polyroute.errors import DataError, StoreError
from polyroute.store.base import Store
from polyroute.store.records import FeedbackExample


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    models: tuple[str, ...]


#: Feedback rows per Arrow record batch when streaming from the store.
BATCH_ROWS = 50_000
_COLUMNS = ("prompt_id", "prompt", "task", "model", "quality", "cost", "latency")


def feedback_batches(examples: Iterable[FeedbackExample], *,
                     batch_rows: int = BATCH_ROWS) -> Iterator[Any]:
    """Feedback examples (a store's paged :meth:`~Store.feedback_examples`) as long-format
    Arrow record batches of ``batch_rows`` rows, for :func:`polyroute.data.chunked.
    outcomes_from_batches`: any store whose reads page can be trained on without holding its
    log as Python objects."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}

    def flush() -> Any:
        batch = pa.RecordBatch.from_pydict(columns)
        for values in columns.values():
            values.clear()
        return batch

    for e in examples:
        for name, value in zip(_COLUMNS, (e.request_id, e.prompt, e.profile or "gateway",
                                          e.model, e.score, e.cost, e.latency_s), strict=True):
            columns[name].append(value)
        if len(columns["prompt_id"]) >= batch_rows:
            yield flush()
    if columns["prompt_id"]:
        yield flush()


def feedback_outcomes(store: Store, *, batch_rows: int = BATCH_ROWS) -> Outcomes:
    """The store's feedback as an :class:`Outcomes` table (unknown cells are NaN), streamed
    in batches. Prices are not part of the long format: every cell carries its recorded cost,
    so the models are listed at price 0."""
    try:
        return outcomes_from_batches(feedback_batches(store.feedback_examples(),
                                                      batch_rows=batch_rows),
                                     source="gateway feedback")
    except DataError as exc:
        if "holds no rows" not in str(exc):
            raise
    raise StoreError("no logged request has feedback yet (POST /v1/feedback), or their "
                     "prompts were not recorded (store.record_prompts)")


def export_feedback(store: Store, path: str | Path) -> ExportResult:
    """Write the store's feedback to ``path`` in the long format, as JSONL, CSV or Parquet as
    the file name asks (see :func:`~polyroute.data.save_outcomes`)."""
    outcomes_format(path)  # an unknown extension fails before the store is read
    outcomes = feedback_outcomes(store)
    written = save_outcomes(outcomes, path)
    return ExportResult(written, outcomes.n_prompts, outcomes.model_names)

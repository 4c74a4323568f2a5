"""Read long-format outcomes in chunks: a busy gateway's log does not fit in memory as rows.

The whole-file loader (:func:`~polyroute.data.load_outcomes`) turns every row into a Python dict
before pivoting; at millions of rows that costs gigabytes. Here rows arrive as Arrow record
batches — from a Parquet file (:func:`parquet_batches`), the SQLite store's paged feedback
(:func:`polyroute.store.export.feedback_batches`) or any other source, e.g. a PostgreSQL
cursor — and only one batch is ever held as Python objects; the result grows as the
``prompts × models`` matrices the routers train on. Each record is validated by the same code
as the whole-file loader (:func:`~polyroute.data.loaders.long_cell`), so both give the same
table, with the same errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from polyroute.data.loaders import _resolve_models, finish_outcomes, load_models, long_cell
from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, ModelInfo, Outcomes
from polyroute.errors import DataError

#: Rows per record batch read from Parquet. Every row repeats its prompt's text, so a batch of
#: long prompts is tens of MB as Arrow data and again as Python strings.
BATCH_ROWS = 16_384


def parquet_batches(path: str | Path, *, batch_rows: int = BATCH_ROWS) -> Iterator[Any]:
    """The record batches of a Parquet file (or a directory of them), ``batch_rows`` at a time,
    through pyarrow's dataset reader. Read-ahead is one batch and one file: pyarrow's default
    (16 batches, 4 files) would hold that many batches of long prompt texts decoded at once."""
    import pyarrow.dataset as ds

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        dataset = ds.dataset(path, format="parquet")
        yield from dataset.to_batches(batch_size=batch_rows, batch_readahead=1,
                                      fragment_readahead=1)
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


class _Pivot:
    """Prompts × models matrices that grow as rows arrive (capacity doubles)."""

    def __init__(self) -> None:
        self.prompt_index: dict[str, int] = {}
        self.texts: list[str] = []
        self.tasks: list[str] = []
        self.first_row: list[int] = []
        self.model_index: dict[str, int] = {}
        self._alloc(1024, 4)

    def _alloc(self, rows: int, cols: int) -> None:
        old = getattr(self, "quality", None)
        new = {"quality": np.full((rows, cols), np.nan), "cost": np.full((rows, cols), np.nan),
               "latency": np.full((rows, cols), np.nan),
               "seen": np.zeros((rows, cols), dtype=np.int64)}
        if old is not None:
            r, c = old.shape
            for name, arr in new.items():
                arr[:r, :c] = getattr(self, name)
        for name, arr in new.items():
            setattr(self, name, arr)

    def _fit(self, rows: int, cols: int) -> None:
        cap_r, cap_c = self.quality.shape
        if rows > cap_r or cols > cap_c:
            self._alloc(max(cap_r * 2, rows) if rows > cap_r else cap_r,
                        max(cap_c * 2, cols) if cols > cap_c else cap_c)

    def add(self, cell: tuple, source: str, unit: str) -> None:
        pid, text, task, model, q, c, lat, row = cell
        i = self.prompt_index.get(pid)
        if i is None:
            i = self.prompt_index[pid] = len(self.texts)
            self.texts.append(text)
            self.tasks.append(task)
            self.first_row.append(row)
        else:
            if text != self.texts[i]:
                raise DataError(f"{source}: {unit} {row}: prompt_id {pid!r} has a different "
                                f"prompt text than on {unit} {self.first_row[i]}")
            if task and self.tasks[i] and task != self.tasks[i]:
                raise DataError(f"{source}: {unit} {row}: prompt_id {pid!r} has task {task!r} "
                                f"but {self.tasks[i]!r} on {unit} {self.first_row[i]}")
        j = self.model_index.setdefault(model, len(self.model_index))
        self._fit(len(self.texts), len(self.model_index))
        if self.seen[i, j]:
            if self.quality[i, j] != q:
                raise DataError(f"{source}: {unit} {row}: prompt_id {pid!r} × model {model!r} "
                                f"has quality {q:g} but {self.quality[i, j]:g} on {unit} "
                                f"{self.seen[i, j]}")
            return
        self.seen[i, j] = row
        self.quality[i, j] = q
        if c is not None:
            self.cost[i, j] = c
        if lat is not None:
            self.latency[i, j] = lat

    def trimmed(self, name: str) -> np.ndarray:
        return getattr(self, name)[:len(self.texts), :len(self.model_index)]


def outcomes_from_batches(batches: Iterable[Any],
                          models: str | Path | Mapping[str, ModelInfo] | None = None, *,
                          output_tokens: int = DEFAULT_OUTPUT_TOKENS,
                          source: str = "<batches>") -> Outcomes:
    """An :class:`Outcomes` from long-format record batches (``prompt_id, prompt, model,
    quality`` and optional ``task, cost, latency, effort`` columns), one batch in Python objects
    at a time. Rows are numbered from 1 across batches in errors; ``models`` prices the models
    as for :func:`~polyroute.data.load_outcomes`."""
    if output_tokens < 0:
        raise DataError(f"output_tokens must be >= 0, got {output_tokens}")
    if isinstance(models, (str, Path)):
        prices = load_models(models)
    else:
        prices = dict(models or {})
    pivot = _Pivot()
    row = 0
    for batch in batches:
        for rec in batch.to_pylist():
            row += 1
            rec = {k: v for k, v in rec.items() if v is not None}
            pivot.add(long_cell(rec, f"{source}: row {row}", row), source, "row")
    if not pivot.texts:
        raise DataError(f"{source}: the file holds no rows")
    return finish_outcomes(tuple(pivot.prompt_index), pivot.texts, pivot.tasks,
                           list(pivot.model_index), pivot.trimmed("quality"),
                           pivot.trimmed("cost"), pivot.trimmed("latency"),
                           pivot.trimmed("seen"), source, prices, output_tokens, "row")


def load_parquet_chunked(path: str | Path,
                         models: str | Path | Mapping[str, ModelInfo] | None = None, *,
                         output_tokens: int = DEFAULT_OUTPUT_TOKENS,
                         batch_rows: int = BATCH_ROWS) -> Outcomes:
    """A long-format Parquet file read in batches: the same table as ``load_outcomes(path)``
    (a ``models.json`` next to the file prices the models when ``models`` is omitted)."""
    path = Path(path)
    if not isinstance(models, (str, Path)):
        models = _resolve_models(path, models)
    return outcomes_from_batches(parquet_batches(path, batch_rows=batch_rows), models,
                                 output_tokens=output_tokens, source=str(path))

"""Read outcomes from files, with errors that name the file, the line and the field.

Two shapes are understood:

* **wide** (the llmrouter-bench JSONL): one prompt per line with a ``scores`` object
  ``{model: quality}`` and optionally ``costs`` / ``latencies`` objects of the same shape;
* **long**: one row per (prompt, model) with ``prompt_id, prompt, model, quality`` and optional
  ``cost, latency, task`` columns, as JSONL, CSV or Parquet.

Prices come from a models file (``models.json``). A cell without a recorded cost is charged by the
rule in SOURCE.md, which is why every model that lacks per-row costs must have a price.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import math
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, ModelInfo, Outcomes, rule_costs
from polyroute.efforts import LEVELS, candidate_name, split_candidate
from polyroute.errors import DataError

_LONG_REQUIRED = ("prompt_id", "prompt", "model", "quality")
#: The text encoding read by default: UTF-8, ignoring a leading byte-order mark (spreadsheet
#: programs start CSV files with one, which would otherwise become part of the first column name).
DEFAULT_ENCODING = "utf-8-sig"
#: File formats by extension (a trailing ``.gz`` is allowed on the text formats).
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
           ".parquet": "parquet"}


def outcomes_format(path: str | Path) -> str:
    """``jsonl``, ``csv`` or ``parquet``, from the file name; a DataError for anything else.

    Reading and writing share this one rule, so a file written under a name is read back in the
    format that name asks for.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in FORMATS:
            return FORMATS[suffix]
    raise DataError(f"{path}: unknown format; use .jsonl, .csv or .parquet (optionally .gz)")


# -- models file -------------------------------------------------------------------------------
def load_models(path: str | Path, *, encoding: str = DEFAULT_ENCODING) -> dict[str, ModelInfo]:
    """Read a models file: ``{name: {input_price_per_mtok, output_price_per_mtok, ...}}``.

    A list of objects each carrying a ``name`` is accepted too.
    """
    path = Path(path)
    raw = _read_json_file(path, encoding)
    if isinstance(raw, list):
        items: list[tuple[Any, Any]] = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict) or "name" not in entry:
                raise DataError(f"{path}: entry {i} must be an object with a 'name' field")
            items.append((entry["name"], entry))
    elif isinstance(raw, dict):
        items = list(raw.items())
    else:
        raise DataError(f"{path}: expected a JSON object mapping model names to prices")
    if not items:
        raise DataError(f"{path}: the models file lists no models")
    models: dict[str, ModelInfo] = {}
    for name, entry in items:
        if not isinstance(entry, dict):
            raise DataError(f"{path}: model {name!r}: expected an object with prices")
        for key in ("input_price_per_mtok", "output_price_per_mtok"):
            if key not in entry:
                raise DataError(f"{path}: model {name!r}: missing field {key!r}")
        models[str(name)] = ModelInfo(
            str(name),
            _as_price(entry["input_price_per_mtok"], path, name, "input_price_per_mtok"),
            _as_price(entry["output_price_per_mtok"], path, name, "output_price_per_mtok"),
        )
    return models


def _as_price(value: Any, path: Path, name: Any, key: str) -> float:
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}: model {name!r}: {key} must be a number, got {value!r}") from None
    if not math.isfinite(price) or price < 0:
        raise DataError(f"{path}: model {name!r}: {key} must be >= 0, got {value!r}")
    return price


def _read_json_file(path: Path, encoding: str = DEFAULT_ENCODING) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return json.loads(_read_text(path, encoding))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


# -- outcomes ----------------------------------------------------------------------------------
def load_outcomes(
    path: str | Path,
    models: str | Path | Mapping[str, ModelInfo] | None = None,
    *,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    encoding: str = DEFAULT_ENCODING,
) -> Outcomes:
    """Load an outcomes file in any supported format (chosen by extension and content).

    ``models`` is a models file or an already-loaded mapping; when omitted, a ``models.json``
    next to the data file is used if present. ``output_tokens`` is the per-answer output length
    assumed by the cost rule for cells without a recorded cost. ``encoding`` applies to the text
    formats (JSONL, CSV) and the models file; the default is UTF-8 with an optional BOM.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if output_tokens < 0:
        raise DataError(f"output_tokens must be >= 0, got {output_tokens}")
    kind = outcomes_format(path)
    _check_encoding(encoding)
    if isinstance(models, (str, Path)):
        prices = load_models(models, encoding=encoding)
    else:
        prices = _resolve_models(path, models, encoding)
    if kind == "parquet":
        rows = _parquet_rows(path)
        return _from_long(rows, path, prices, output_tokens, unit="row")
    text = _read_text(path, encoding)
    if kind == "csv":
        return _from_long(_csv_rows(path, text), path, prices, output_tokens, unit="row")
    records = list(_jsonl_records(path, text))
    if not records:
        raise DataError(f"{path}: the file holds no records")
    if "scores" in records[0][1]:
        return _from_wide(records, path, prices, output_tokens)
    return _from_long(records, path, prices, output_tokens, unit="line")


def _resolve_models(
    path: Path, models: Mapping[str, ModelInfo] | None, encoding: str = DEFAULT_ENCODING
) -> dict[str, ModelInfo]:
    if models is None:
        sibling = path.parent / "models.json"
        return load_models(sibling, encoding=encoding) if sibling.is_file() else {}
    return dict(models)


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} (try utf-8, cp1252 or "
                        f"latin-1)") from None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if its name ends in ``.gz``."""
    if path.suffix.lower() != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None


def _read_text(path: Path, encoding: str = DEFAULT_ENCODING) -> str:
    """The whole file as text, or a DataError naming the line and byte offset of the first
    byte that is not valid in ``encoding`` (e.g. a Latin-1 spreadsheet export read as UTF-8)."""
    _check_encoding(encoding)
    raw = _read_bytes(path)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        # utf-8-sig decodes what follows a byte-order mark: count the offset in the file.
        start = exc.start + len(raw) - len(exc.object)
        line = raw.count(b"\n", 0, start) + 1
        where = " of the decompressed data" if path.suffix.lower() == ".gz" else ""
        shown = "UTF-8" if codecs.lookup(encoding).name.startswith("utf-8") else encoding
        bad = raw[start:start + exc.end - exc.start]
        raise DataError(f"{path}: line {line}, byte offset {start}{where}: {bad!r} is not valid "
                        f"{shown}; save the file as UTF-8 or pass its encoding with --encoding "
                        f"(e.g. cp1252)") from None


def read_jsonl(path: str | Path, *, encoding: str = DEFAULT_ENCODING, objects: bool = True,
               missing: str = "no such file") -> list[tuple[int, Any]]:
    """Every value of a JSON-lines file (``.gz`` too) with its line number, blank lines skipped.

    The one reader of JSONL files (outcomes, references, prompt files): every problem is one
    :class:`DataError` naming the file and line — a missing file (``missing`` says what was
    expected), bytes not valid in ``encoding``, a line that is not JSON, and with ``objects``
    a line that is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {missing}")
    return list(_jsonl_records(path, _read_text(path, encoding), objects))


def _jsonl_records(path: Path, text: str, objects: bool = True) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
        if objects and not isinstance(obj, dict):
            raise DataError(f"{path}: line {lineno}: expected a JSON object")
        yield lineno, obj


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        # Data rows start on line 2; a quoted newline would shift this, which we accept.
        rows = [(i + 2, {k: v for k, v in row.items() if v not in ("", None)}) for i, row in
                enumerate(reader)]
    if not rows:
        raise DataError(f"{path}: the file holds no rows")
    return rows


def _parquet_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a declared dependency
        raise DataError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    rows = [(i + 1, {k: v for k, v in r.items() if v is not None}) for i, r in
            enumerate(table.to_pylist())]
    if not rows:
        raise DataError(f"{path}: the file holds no rows")
    return rows


def _number(value: Any, where: str, field: str, lo: float | None = None,
            hi: float | None = None) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: field {field!r}: expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise DataError(f"{where}: field {field!r}: expected a finite number, got {value!r}")
    if lo is not None and x < lo or hi is not None and x > hi:
        bounds = f"[{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise DataError(f"{where}: field {field!r}: value {x:g} is outside {bounds}")
    return x


def _from_wide(records: list[tuple[int, dict[str, Any]]], path: Path,
               prices: dict[str, ModelInfo], output_tokens: int) -> Outcomes:
    order: dict[str, int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for lineno, rec in records:
        where = f"{path}: line {lineno}"
        for key in ("prompt_id", "prompt", "scores"):
            if key not in rec:
                raise DataError(f"{where}: missing field {key!r}")
        if not isinstance(rec["scores"], dict) or not rec["scores"]:
            raise DataError(f"{where}: field 'scores' must be a non-empty object")
        pid = str(rec["prompt_id"])
        row = {
            "prompt": str(rec["prompt"]),
            "task": str(rec.get("task", "")),
            "scores": {str(m): _number(q, where, f"scores.{m}", 0, 1)
                       for m, q in rec["scores"].items()},
            "costs": {str(m): _number(c, where, f"costs.{m}", 0)
                      for m, c in (rec.get("costs") or {}).items()},
            "latencies": {str(m): _number(t, where, f"latencies.{m}", 0)
                          for m, t in (rec.get("latencies") or {}).items()},
        }
        if pid in rows:
            if rows[pid] != row:
                raise DataError(f"{where}: duplicate prompt_id {pid!r} with different contents "
                                f"(first seen on line {order[pid]})")
            continue
        order[pid] = lineno
        rows[pid] = row
    cells = [
        (pid, r["prompt"], r["task"], m, q, r["costs"].get(m), r["latencies"].get(m), order[pid])
        for pid, r in rows.items() for m, q in r["scores"].items()
    ]
    return _assemble(cells, path, prices, output_tokens, unit="line")


def _from_long(records: list[tuple[int, dict[str, Any]]], path: Path,
               prices: dict[str, ModelInfo], output_tokens: int, unit: str) -> Outcomes:
    if not records:
        raise DataError(f"{path}: the file holds no records")
    cells = [long_cell(rec, f"{path}: {unit} {lineno}", lineno) for lineno, rec in records]
    return _assemble(cells, path, prices, output_tokens, unit=unit)


def long_cell(rec: Mapping[str, Any], where: str, lineno: int) -> tuple:
    """One validated long-format record as ``(prompt_id, prompt, task, candidate, quality,
    cost or None, latency or None, lineno)``; ``where`` names it in errors. Absent fields are
    missing keys (readers drop nulls first)."""
    for key in _LONG_REQUIRED:
        if key not in rec:
            raise DataError(f"{where}: missing field {key!r}")
    cost = rec.get("cost")
    lat = rec.get("latency")
    effort = rec.get("effort")
    if effort is not None and effort != "" and effort not in LEVELS:
        raise DataError(f"{where}: effort {effort!r} is not a reasoning effort level "
                        f"({', '.join(LEVELS)}); leave it empty for none")
    return (
        str(rec["prompt_id"]), str(rec["prompt"]), str(rec.get("task", "")),
        candidate_name(str(rec["model"]), effort or None),
        _number(rec["quality"], where, "quality", 0, 1),
        None if cost is None else _number(cost, where, "cost", 0),
        None if lat is None else _number(lat, where, "latency", 0),
        lineno,
    )


def _assemble(cells: list[tuple], path: Path, prices: dict[str, ModelInfo], output_tokens: int,
              unit: str) -> Outcomes:
    """Pivot validated cells into matrices, checking cross-row consistency."""
    prompt_index: dict[str, int] = {}
    prompt_meta: list[tuple[str, str, int]] = []
    model_index: dict[str, int] = {}
    for pid, text, task, model, _q, _c, _l, lineno in cells:
        if pid not in prompt_index:
            prompt_index[pid] = len(prompt_meta)
            prompt_meta.append((text, task, lineno))
        else:
            first_text, first_task, first_line = prompt_meta[prompt_index[pid]]
            if text != first_text:
                raise DataError(f"{path}: {unit} {lineno}: prompt_id {pid!r} has a different "
                                f"prompt text than on {unit} {first_line}")
            if task and first_task and task != first_task:
                raise DataError(f"{path}: {unit} {lineno}: prompt_id {pid!r} has task {task!r} "
                                f"but {first_task!r} on {unit} {first_line}")
        model_index.setdefault(model, len(model_index))
    n, m = len(prompt_meta), len(model_index)
    quality = np.full((n, m), np.nan)
    cost = np.full((n, m), np.nan)
    latency = np.full((n, m), np.nan)
    seen_line = np.zeros((n, m), dtype=int)
    for pid, _text, _task, model, q, c, lat, lineno in cells:
        i, j = prompt_index[pid], model_index[model]
        if seen_line[i, j]:
            if quality[i, j] != q:
                raise DataError(f"{path}: {unit} {lineno}: prompt_id {pid!r} × model {model!r} "
                                f"has quality {q:g} but {quality[i, j]:g} on {unit} "
                                f"{seen_line[i, j]}")
            continue
        seen_line[i, j] = lineno
        quality[i, j] = q
        if c is not None:
            cost[i, j] = c
        if lat is not None:
            latency[i, j] = lat

    return finish_outcomes(tuple(prompt_index), [t for t, _task, _l in prompt_meta],
                           [task for _t, task, _l in prompt_meta], list(model_index), quality,
                           cost, latency, seen_line, path, prices, output_tokens, unit)


def finish_outcomes(prompt_ids: tuple[str, ...], texts: list[str], tasks: list[str],
                    model_names: list[str], quality: np.ndarray, cost: np.ndarray,
                    latency: np.ndarray, seen_line: np.ndarray, path: Path | str,
                    prices: dict[str, ModelInfo], output_tokens: int, unit: str) -> Outcomes:
    """Price the models and build the table from pivoted matrices (NaN = no value; ``seen_line``
    the row or line each known cell came from, 0 for none): shared by the whole-file loader and
    the chunked reader (:mod:`polyroute.data.chunked`) so both give the same table."""
    models: list[ModelInfo] = []
    for j, name in enumerate(model_names):
        needs_rule = bool(np.any(~np.isnan(quality[:, j]) & np.isnan(cost[:, j])))
        base = split_candidate(name)[0]
        if name in prices:
            models.append(prices[name])
        elif base in prices:  # an effort level is priced per token like its model
            models.append(ModelInfo(name, prices[base].input_price_per_mtok,
                                    prices[base].output_price_per_mtok))
        elif needs_rule:
            first = int(seen_line[:, j][seen_line[:, j] > 0].min())
            raise DataError(f"{path}: {unit} {first}: model {name!r} has no recorded cost and no "
                            f"price in the models file; add it to models.json")
        else:
            models.append(ModelInfo(name, 0.0, 0.0))
    # Every cell without a recorded cost (unknown-quality cells too, so that cost is defined
    # wherever a router might send a prompt) is charged by SOURCE.md's rule.
    cost = np.where(np.isnan(cost), rule_costs(texts, models, output_tokens), cost)
    return Outcomes(
        prompt_ids=prompt_ids,
        prompts=tuple(texts),
        tasks=tuple(tasks),
        models=tuple(models),
        quality=quality,
        cost=cost,
        latency=None if np.all(np.isnan(latency)) else latency,
        source=str(path),
    )


def long_rows(outcomes: Outcomes) -> list[dict[str, Any]]:
    """One dict per known cell, in the long format's columns (the inverse of loading)."""
    rows: list[dict[str, Any]] = []
    for i, pid in enumerate(outcomes.prompt_ids):
        for j, name in enumerate(outcomes.model_names):
            q = outcomes.quality[i, j]
            if np.isnan(q):
                continue
            row: dict[str, Any] = {"prompt_id": pid, "prompt": outcomes.prompts[i],
                                   "task": outcomes.tasks[i], "model": name,
                                   "quality": float(q), "cost": float(outcomes.cost[i, j])}
            if outcomes.latency is not None and not np.isnan(outcomes.latency[i, j]):
                row["latency"] = float(outcomes.latency[i, j])
            rows.append(row)
    return rows


def save_outcomes(outcomes: Outcomes, path: str | Path) -> Path:
    """Write outcomes in the long format, as the file name asks: ``.jsonl``, ``.csv`` or
    ``.parquet`` (text formats optionally ``.gz``). :func:`load_outcomes` reads it back."""
    path = Path(path)
    kind = outcomes_format(path)
    if kind == "parquet" and path.suffix.lower() == ".gz":
        raise DataError(f"{path}: Parquet is compressed already; drop the .gz")
    rows = long_rows(outcomes)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        if kind == "csv":
            fields = list(dict.fromkeys(k for r in rows for k in r)) or list(_LONG_REQUIRED)
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        else:
            fh.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def save_long_jsonl(outcomes: Outcomes, path: str | Path) -> Path:
    """Write outcomes in the long JSONL format (one line per known cell); the inverse of loading."""
    path = Path(path)
    if outcomes_format(path) != "jsonl":
        raise DataError(f"{path}: save_long_jsonl writes JSONL; name the file .jsonl "
                        f"or use save_outcomes")
    return save_outcomes(outcomes, path)

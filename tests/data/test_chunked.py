"""The chunked outcomes reader: Arrow record batches in, the whole-file loader's table out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polyroute.data import load_outcomes
from polyroute.data.chunked import load_parquet_chunked, outcomes_from_batches, parquet_batches
from polyroute.errors import DataError


def _long_rows(n_prompts: int = 40, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_prompts):
        for model in ("A", "B", "C"):
            if rng.random() < 0.2:  # partial feedback: some cells unknown
                continue
            row = {"prompt_id": f"p{i}", "prompt": f"prompt number {i}", "task": f"t{i % 3}",
                   "model": model, "quality": float(rng.integers(0, 2))}
            if rng.random() < 0.5:
                row["cost"] = float(rng.random() / 100)
            rows.append(row)
    return rows


def _by_key(outcomes) -> dict[tuple[str, str], tuple[float, float]]:
    """Every cell keyed by (prompt id, model name): tables compared by key, never by position."""
    return {(pid, m): (float(outcomes.quality[i, j]), float(outcomes.cost[i, j]))
            for i, pid in enumerate(outcomes.prompt_ids)
            for j, m in enumerate(outcomes.model_names)}


def test_chunked_reader_matches_the_whole_file_loader_on_shuffled_rows(tmp_path,
                                                                          models_file) -> None:
    rows = _long_rows()
    order = np.random.default_rng(1).permutation(len(rows))
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist([rows[i] for i in order]), path, row_group_size=16)
    whole = load_outcomes(path, models_file)
    chunked = load_parquet_chunked(path, models_file, batch_rows=7)  # many batch boundaries
    assert sorted(chunked.prompt_ids) == sorted(whole.prompt_ids)
    assert set(chunked.model_names) == set(whole.model_names)
    left, right = _by_key(whole), _by_key(chunked)
    assert left.keys() == right.keys()
    for key, (q, c) in left.items():
        q2, c2 = right[key]
        assert (np.isnan(q) and np.isnan(q2)) or q == q2, key
        assert c == pytest.approx(c2), key
    texts = dict(zip(whole.prompt_ids, zip(whole.prompts, whole.tasks, strict=True),
                     strict=True))
    assert all(texts[p] == (t, task) for p, t, task in
               zip(chunked.prompt_ids, chunked.prompts, chunked.tasks, strict=True))
    assert {m.name: m for m in whole.models} == {m.name: m for m in chunked.models}


def test_any_iterator_of_record_batches_is_read(models_file) -> None:
    rows = _long_rows(10)
    batches = (pa.RecordBatch.from_pylist(rows[i:i + 4]) for i in range(0, len(rows), 4))
    out = outcomes_from_batches(batches, models_file, source="cursor")
    assert out.n_prompts == 10 and out.source == "cursor"


def test_a_bad_row_is_named_by_its_number_across_batches(models_file) -> None:
    rows = _long_rows(10)
    rows[9] = dict(rows[9], quality=1.5)
    batches = [pa.RecordBatch.from_pylist(rows[:4]), pa.RecordBatch.from_pylist(rows[4:])]
    with pytest.raises(DataError, match=r"cursor: row 10: field 'quality'"):
        outcomes_from_batches(batches, models_file, source="cursor")


def test_a_conflict_between_batches_is_found(models_file) -> None:
    first = {"prompt_id": "p", "prompt": "x", "model": "A", "quality": 1.0}
    again = dict(first, quality=0.0)
    batches = [pa.RecordBatch.from_pylist([first]), pa.RecordBatch.from_pylist([again])]
    with pytest.raises(DataError, match="row 2: prompt_id 'p' × model 'A' has quality 0"):
        outcomes_from_batches(batches, models_file)


def test_unreadable_parquet_is_a_data_error(tmp_path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        list(parquet_batches(bad))
    with pytest.raises(DataError, match="no such file"):
        list(parquet_batches(tmp_path / "missing.parquet"))

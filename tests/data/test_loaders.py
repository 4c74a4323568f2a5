"""Loading outcomes files: every supported shape gives the same table, every bad input a DataError
whose message names the file, the line (or row) and the field."""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polyroute.data import (
    DEFAULT_OUTPUT_TOKENS,
    ModelInfo,
    load_bundled,
    load_models,
    load_outcomes,
    rule_cost,
    save_long_jsonl,
)
from polyroute.data.bundled import bundled_paths
from polyroute.errors import DataError

PRICES = {"X": {"input_price_per_mtok": 1.0, "output_price_per_mtok": 2.0},
          "Y": {"input_price_per_mtok": 3.0, "output_price_per_mtok": 4.0}}
PROMPTS = [
    ("q1", "What is the capital of France?", "geo", {"X": 1.0, "Y": 0.0}),
    ("q2", "Add 2 and 3.", "math", {"X": 0.5, "Y": 1.0}),
    ("q3", "Name a prime number larger than ten, please, and explain why.", "math",
     {"X": 0.0, "Y": 0.25}),
]


def expected_rule_cost(text: str, model: str, output_tokens: int = 256) -> float:
    """SOURCE.md: (ceil(len(prompt) / 4) × input price + output_tokens × output price) / 1e6."""
    p = PRICES[model]
    return (math.ceil(len(text) / 4) * p["input_price_per_mtok"]
            + output_tokens * p["output_price_per_mtok"]) / 1_000_000


def long_rows() -> list[dict]:
    return [{"prompt_id": pid, "prompt": text, "task": task, "model": m, "quality": q}
            for pid, text, task, scores in PROMPTS for m, q in scores.items()]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def wide_records() -> list[dict]:
    return [{"prompt_id": pid, "task": task, "prompt": text, "scores": scores}
            for pid, text, task, scores in PROMPTS]


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(PRICES))
    return path


def assert_same_table(a, b) -> None:
    assert a.prompt_ids == b.prompt_ids
    assert a.prompts == b.prompts
    assert a.tasks == b.tasks
    assert a.models == b.models
    np.testing.assert_array_equal(a.quality, b.quality)
    np.testing.assert_allclose(a.cost, b.cost, rtol=0, atol=1e-15)


# -- formats -------------------------------------------------------------------------------------
def test_every_format_loads_to_the_same_table(tmp_path: Path, prices_file: Path) -> None:
    wide = load_outcomes(write_jsonl(tmp_path / "wide.jsonl", wide_records()), prices_file)
    long_json = load_outcomes(write_jsonl(tmp_path / "long.jsonl", long_rows()), prices_file)
    long_csv = load_outcomes(write_csv(tmp_path / "long.csv", long_rows()), prices_file)
    long_pq = load_outcomes(write_parquet(tmp_path / "long.parquet", long_rows()), prices_file)

    assert wide.prompt_ids == ("q1", "q2", "q3")
    assert wide.model_names == ("X", "Y")
    assert wide.tasks == ("geo", "math", "math")
    np.testing.assert_array_equal(wide.quality, [[1.0, 0.0], [0.5, 1.0], [0.0, 0.25]])
    for other in (long_json, long_csv, long_pq):
        assert_same_table(wide, other)


def test_gzipped_jsonl_loads(tmp_path: Path, prices_file: Path) -> None:
    path = tmp_path / "wide.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in wide_records())
    plain = load_outcomes(write_jsonl(tmp_path / "wide.jsonl", wide_records()), prices_file)
    assert_same_table(load_outcomes(path, prices_file), plain)


@pytest.mark.parametrize("name", ["long.csv", "long.jsonl"])
def test_a_byte_order_mark_is_ignored(tmp_path: Path, prices_file: Path, name: str) -> None:
    # Spreadsheet programs save "CSV UTF-8" with a BOM before the first header.
    plain = tmp_path / f"plain-{name}"
    (write_csv if name.endswith(".csv") else write_jsonl)(plain, long_rows())
    bom = tmp_path / name
    bom.write_text(plain.read_text(encoding="utf-8"), encoding="utf-8-sig")
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    assert_same_table(load_outcomes(bom, prices_file), load_outcomes(plain, prices_file))


def test_cost_follows_the_source_rule_when_not_recorded(tmp_path: Path,
                                                        prices_file: Path) -> None:
    path = write_jsonl(tmp_path / "wide.jsonl", wide_records())
    outcomes = load_outcomes(path, prices_file)
    for i, (_pid, text, _task, _scores) in enumerate(PROMPTS):
        for j, model in enumerate(("X", "Y")):
            assert outcomes.cost[i, j] == pytest.approx(expected_rule_cost(text, model), abs=1e-15)


def test_output_tokens_of_the_rule_are_configurable(tmp_path: Path, prices_file: Path) -> None:
    path = write_jsonl(tmp_path / "wide.jsonl", wide_records())
    outcomes = load_outcomes(path, prices_file, output_tokens=100)
    text = PROMPTS[2][1]
    assert outcomes.cost[2, 1] == pytest.approx(expected_rule_cost(text, "Y", 100), abs=1e-15)
    default = load_outcomes(path, prices_file)
    # 156 fewer output tokens at $2 / $4 per million.
    np.testing.assert_allclose(default.cost - outcomes.cost,
                               np.tile([156 * 2e-6, 156 * 4e-6], (3, 1)), atol=1e-15)
    assert DEFAULT_OUTPUT_TOKENS == 256


def test_negative_output_tokens_is_a_data_error(tmp_path: Path, prices_file: Path) -> None:
    path = write_jsonl(tmp_path / "wide.jsonl", wide_records())
    with pytest.raises(DataError, match="output_tokens"):
        load_outcomes(path, prices_file, output_tokens=-1)


def test_per_row_cost_is_used_where_given_long(tmp_path: Path, prices_file: Path) -> None:
    rows = long_rows()
    rows[0]["cost"] = 0.125  # q1 × X
    rows[3]["cost"] = 0.5  # q2 × Y
    for path in (write_jsonl(tmp_path / "long.jsonl", rows), write_csv(tmp_path / "long.csv", rows),
                 write_parquet(tmp_path / "long.parquet", rows)):
        outcomes = load_outcomes(path, prices_file)
        assert outcomes.cost[0, 0] == 0.125
        assert outcomes.cost[1, 1] == 0.5
        # Cells without a recorded cost fall back to the rule.
        assert outcomes.cost[0, 1] == pytest.approx(expected_rule_cost(PROMPTS[0][1], "Y"))


def test_per_row_cost_and_latency_are_used_where_given_wide(tmp_path: Path) -> None:
    records = wide_records()
    for r in records:
        r["costs"] = {"X": 0.01, "Y": 0.02}
        r["latencies"] = {"X": 1.5, "Y": 0.5}
    # Every cell has a recorded cost, so no models file is needed.
    outcomes = load_outcomes(write_jsonl(tmp_path / "wide.jsonl", records))
    np.testing.assert_array_equal(outcomes.cost, np.tile([0.01, 0.02], (3, 1)))
    assert outcomes.latency is not None
    np.testing.assert_array_equal(outcomes.latency, np.tile([1.5, 0.5], (3, 1)))
    assert [m.input_price_per_mtok for m in outcomes.models] == [0.0, 0.0]


def test_models_json_beside_the_data_is_used_by_default(tmp_path: Path) -> None:
    (tmp_path / "models.json").write_text(json.dumps(PRICES))
    outcomes = load_outcomes(write_jsonl(tmp_path / "wide.jsonl", wide_records()))
    assert outcomes.models == (ModelInfo("X", 1.0, 2.0), ModelInfo("Y", 3.0, 4.0))


def test_models_may_be_given_as_a_mapping(tmp_path: Path) -> None:
    mapping = {"X": ModelInfo("X", 1.0, 2.0), "Y": ModelInfo("Y", 3.0, 4.0)}
    outcomes = load_outcomes(write_jsonl(tmp_path / "wide.jsonl", wide_records()), mapping)
    assert outcomes.cost[0, 0] == pytest.approx(expected_rule_cost(PROMPTS[0][1], "X"))


def test_missing_cells_are_nan(tmp_path: Path, prices_file: Path) -> None:
    rows = [r for r in long_rows() if not (r["prompt_id"] == "q2" and r["model"] == "X")]
    outcomes = load_outcomes(write_jsonl(tmp_path / "long.jsonl", rows), prices_file)
    assert np.isnan(outcomes.quality[1, 0])
    # An unknown quality cell still has a cost: where a router might send the prompt.
    assert outcomes.cost[1, 0] == pytest.approx(expected_rule_cost(PROMPTS[1][1], "X"))


def test_identical_duplicates_are_accepted(tmp_path: Path, prices_file: Path) -> None:
    once = load_outcomes(write_jsonl(tmp_path / "once.jsonl", long_rows()), prices_file)
    twice = load_outcomes(write_jsonl(tmp_path / "twice.jsonl", long_rows() + long_rows()[:3]),
                          prices_file)
    assert_same_table(once, twice)
    wide_twice = load_outcomes(
        write_jsonl(tmp_path / "wide.jsonl", wide_records() + wide_records()[:1]), prices_file)
    assert_same_table(once, wide_twice)


def test_models_file_as_a_list(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps([{"name": n, **p} for n, p in PRICES.items()]))
    assert load_models(path) == {"X": ModelInfo("X", 1.0, 2.0), "Y": ModelInfo("Y", 3.0, 4.0)}


# -- error paths ---------------------------------------------------------------------------------
def assert_data_error(path: Path, *fragments: str, models=None) -> DataError:
    with pytest.raises(DataError) as info:
        load_outcomes(path, models)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message
    return info.value


def _set(row: int, **changes):
    def edit(rows: list[dict]) -> list[dict]:
        rows[row] = {**rows[row], **changes}
        return [{k: v for k, v in r.items() if v is not None} for r in rows]

    return edit


@pytest.mark.parametrize(("edit", "fragments"), [
    pytest.param(_set(1, quality=None), ("line 2", "'quality'", "missing"), id="missing-field"),
    pytest.param(_set(1, prompt_id=None), ("line 2", "'prompt_id'"), id="missing-id"),
    pytest.param(_set(2, quality=1.5), ("line 3", "'quality'", "1.5", "[0, 1]"),
                 id="quality-above-1"),
    pytest.param(_set(2, quality=-0.1), ("line 3", "'quality'", "-0.1"), id="quality-below-0"),
    pytest.param(_set(3, quality="abc"), ("line 4", "'quality'", "'abc'", "number"),
                 id="not-a-number"),
    pytest.param(_set(3, cost="cheap"), ("line 4", "'cost'", "'cheap'"), id="cost-not-a-number"),
    pytest.param(_set(3, cost=-1), ("line 4", "'cost'"), id="negative-cost"),
    pytest.param(_set(4, model="Z"), ("line 5", "'Z'", "price"), id="unknown-model"),
    pytest.param(lambda rows: rows + [{**rows[0], "quality": 0.0}],
                 ("line 7", "'q1'", "'X'", "quality", "line 1"), id="conflicting-duplicate"),
    pytest.param(lambda rows: rows + [{**rows[0], "model": "Y", "prompt": "Something else?"}],
                 ("line 7", "'q1'", "prompt text", "line 1"), id="different-prompt-text"),
    pytest.param(lambda rows: rows + [{**rows[2], "model": "Y", "task": "poetry"}],
                 ("line 7", "'q2'", "'poetry'", "'math'"), id="different-task"),
])
def test_long_jsonl_errors_name_file_line_and_field(tmp_path: Path, prices_file: Path, edit,
                                                    fragments) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", edit(long_rows()))
    assert_data_error(path, *fragments, models=prices_file)


@pytest.mark.parametrize(("edit", "fragments"), [
    pytest.param(_set(1, prompt=None), ("line 2", "'prompt'"), id="missing-prompt"),
    pytest.param(_set(1, scores={"X": 2}), ("line 2", "'scores.X'", "[0, 1]"), id="score-above-1"),
    pytest.param(_set(1, scores={"X": "n/a"}), ("line 2", "'scores.X'", "'n/a'"),
                 id="score-not-a-number"),
    pytest.param(_set(1, scores={}), ("line 2", "'scores'"), id="empty-scores"),
    pytest.param(_set(2, costs={"Y": "x"}), ("line 3", "'costs.Y'"), id="cost-not-a-number"),
    pytest.param(_set(2, scores={"W": 0.5}), ("line 3", "'W'", "price"), id="unknown-model"),
    pytest.param(lambda rows: rows + [{**rows[0], "scores": {"X": 0.0, "Y": 0.0}}],
                 ("line 4", "'q1'", "line 1"), id="conflicting-duplicate"),
])
def test_wide_jsonl_errors_name_file_line_and_field(tmp_path: Path, prices_file: Path, edit,
                                                    fragments) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", edit(wide_records()))
    assert_data_error(path, *fragments, models=prices_file)


def test_csv_errors_name_the_row(tmp_path: Path, prices_file: Path) -> None:
    rows = long_rows()
    rows[1]["quality"] = 7
    # The second data row is line 3 of the file (after the header).
    assert_data_error(write_csv(tmp_path / "bad.csv", rows), "row 3", "'quality'", "7",
                      models=prices_file)
    missing = [{k: v for k, v in r.items() if k != "model"} for r in long_rows()]
    assert_data_error(write_csv(tmp_path / "nomodel.csv", missing), "row 2", "'model'",
                      models=prices_file)


def test_parquet_errors_name_the_row(tmp_path: Path, prices_file: Path) -> None:
    rows = long_rows()
    rows[1]["quality"] = 7.0
    assert_data_error(write_parquet(tmp_path / "bad.parquet", rows), "row 2", "'quality'",
                      models=prices_file)


def test_corrupt_parquet(tmp_path: Path, prices_file: Path) -> None:
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"this is not parquet")
    assert_data_error(path, "Parquet", models=prices_file)


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv"])
def test_empty_file(tmp_path: Path, prices_file: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("" if name.endswith(".jsonl") else "prompt_id,prompt,model,quality\n")
    assert_data_error(path, "no ", models=prices_file)


def test_blank_lines_only_is_empty(tmp_path: Path, prices_file: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n  \n\n")
    assert_data_error(path, "no records", models=prices_file)


def test_bad_json_line(tmp_path: Path, prices_file: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(long_rows()[0]) + "\n{not json\n")
    assert_data_error(path, "line 2", "JSON", models=prices_file)


def test_json_line_that_is_not_an_object(tmp_path: Path, prices_file: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(long_rows()[0]) + "\n[1, 2]\n")
    assert_data_error(path, "line 2", "object", models=prices_file)


def test_missing_file(tmp_path: Path) -> None:
    assert_data_error(tmp_path / "nope.jsonl", "no such file")


def test_unknown_extension(tmp_path: Path, prices_file: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text(json.dumps(long_rows()[0]) + "\n")
    error = assert_data_error(path, "unknown format", models=prices_file)
    assert ".jsonl" in str(error) and ".parquet" in str(error)


@pytest.mark.parametrize(("content", "fragments"), [
    pytest.param("{not json", ("line 1", "JSON"), id="not-json"),
    pytest.param("[1, 2]", ("entry 0", "'name'"), id="list-without-names"),
    pytest.param('"X"', ("object",), id="not-an-object"),
    pytest.param("{}", ("no models",), id="empty"),
    pytest.param('{"X": 3}', ("'X'", "object"), id="entry-not-an-object"),
    pytest.param('{"X": {"input_price_per_mtok": 1}}', ("'X'", "'output_price_per_mtok'"),
                 id="missing-price"),
    pytest.param('{"X": {"input_price_per_mtok": "a", "output_price_per_mtok": 1}}',
                 ("'X'", "input_price_per_mtok", "number"), id="price-not-a-number"),
    pytest.param('{"X": {"input_price_per_mtok": 1, "output_price_per_mtok": -2}}',
                 ("'X'", "output_price_per_mtok", ">= 0"), id="negative-price"),
])
def test_bad_models_file(tmp_path: Path, content: str, fragments: tuple[str, ...]) -> None:
    path = tmp_path / "models.json"
    path.write_text(content)
    with pytest.raises(DataError) as info:
        load_models(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    # The same error surfaces when the bad file is found beside a data file.
    data = write_jsonl(tmp_path / "wide.jsonl", wide_records())
    with pytest.raises(DataError, match="models.json"):
        load_outcomes(data)


def test_missing_models_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_models(tmp_path / "absent.json")


# -- bundled data ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled():
    return load_bundled()


def test_bundled_data_shape(bundled) -> None:
    assert bundled.n_prompts == 5489
    assert len(bundled.models) == 9
    assert len(bundled.task_names) == 14
    assert {"math", "gsm8k", "mmlu", "human_eval"} <= set(bundled.task_names)
    assert not np.isnan(bundled.quality).any()
    assert np.nanmin(bundled.quality) >= 0 and np.nanmax(bundled.quality) <= 1
    assert len(set(bundled.prompt_ids)) == bundled.n_prompts


def test_bundled_cost_of_a_known_row_equals_the_rule(bundled) -> None:
    data, models = bundled_paths()
    with gzip.open(data, "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    prices = json.loads(models.read_text())
    i = bundled.prompt_ids.index(first["prompt_id"])
    assert bundled.prompts[i] == first["prompt"]
    for j, name in enumerate(bundled.model_names):
        p = prices[name]
        expected = (math.ceil(len(first["prompt"]) / 4) * p["input_price_per_mtok"]
                    + 256 * p["output_price_per_mtok"]) / 1e6
        assert bundled.cost[i, j] == pytest.approx(expected, rel=1e-12)
        assert bundled.quality[i, j] == first["scores"][name]


def test_bundled_output_tokens_is_configurable(bundled) -> None:
    fewer = load_bundled(output_tokens=0)
    out_price = np.array([m.output_price_per_mtok for m in bundled.models])
    np.testing.assert_allclose(bundled.cost - fewer.cost,
                               np.tile(256 * out_price / 1e6, (bundled.n_prompts, 1)), rtol=1e-9)


# -- writing -------------------------------------------------------------------------------------
def test_save_long_jsonl_round_trip(tmp_path: Path, two_cluster_factory) -> None:
    world = two_cluster_factory(6, missing=0.3)
    original = world.outcomes
    assert np.isnan(original.quality).any()
    path = save_long_jsonl(original, tmp_path / "sub" / "out.jsonl")
    assert path.is_file()
    again = load_outcomes(path, {m.name: m for m in original.models})
    assert again.prompt_ids == original.prompt_ids
    assert again.prompts == original.prompts
    assert again.tasks == original.tasks
    assert again.models == original.models
    np.testing.assert_array_equal(again.quality, original.quality)  # NaNs compare equal here
    np.testing.assert_allclose(again.cost, original.cost, rtol=1e-12)
    # One line per known cell.
    assert len(path.read_text().splitlines()) == int((~np.isnan(original.quality)).sum())


def test_save_long_jsonl_keeps_latency(tmp_path: Path, two_cluster) -> None:
    o = two_cluster.outcomes
    latency = np.arange(o.quality.size, dtype=float).reshape(o.quality.shape) / 10
    with_latency = type(o)(o.prompt_ids, o.prompts, o.tasks, o.models, o.quality, o.cost,
                           latency=latency)
    again = load_outcomes(save_long_jsonl(with_latency, tmp_path / "lat.jsonl"))
    np.testing.assert_allclose(again.latency, latency)
    np.testing.assert_allclose(again.cost, o.cost)


def test_rule_cost_helper() -> None:
    model = ModelInfo("m", 1.0, 2.0)
    assert rule_cost("abcde", model, 10) == pytest.approx((2 * 1.0 + 10 * 2.0) / 1e6)


# -- writing in the format the name asks for ----------------------------------------------------
@pytest.mark.parametrize("name", ["o.jsonl", "o.csv", "o.parquet", "o.csv.gz", "o.jsonl.gz"])
def test_save_outcomes_round_trips_in_every_format(tmp_path: Path, two_cluster_factory,
                                                   name: str) -> None:
    from polyroute.data import save_outcomes
    from polyroute.data.loaders import outcomes_format

    original = two_cluster_factory(3, missing=0.3).outcomes
    path = save_outcomes(original, tmp_path / name)
    kind = outcomes_format(path)
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    assert raw.startswith({"csv": b"prompt_id,", "parquet": b"PAR1", "jsonl": b"{"}[kind])
    again = load_outcomes(path)
    assert again.prompt_ids == original.prompt_ids and again.model_names == original.model_names
    np.testing.assert_array_equal(again.quality, original.quality)
    known = ~np.isnan(original.quality)
    np.testing.assert_array_equal(again.cost[known], original.cost[known])


def test_save_refuses_a_name_it_cannot_honour(tmp_path: Path, two_cluster) -> None:
    from polyroute.data import save_outcomes

    with pytest.raises(DataError, match="unknown format"):
        save_outcomes(two_cluster.outcomes, tmp_path / "o.xlsx")
    with pytest.raises(DataError, match="writes JSONL"):
        save_long_jsonl(two_cluster.outcomes, tmp_path / "o.csv")
    assert not list(tmp_path.iterdir())


def test_a_utf8_error_names_the_byte_offset_in_the_file_after_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbfprompt_id,prompt,model,quality,cost\np1,caf\xe9,X,1,0\n")
    with pytest.raises(DataError, match=r"line 2, byte offset 45: b'\\xe9' is not valid UTF-8"):
        load_outcomes(path)


def test_a_truncated_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl.gz"
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in long_rows() * 50).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_outcomes(path)


def test_an_effort_column_makes_each_level_a_candidate_priced_like_its_model(
        tmp_path: Path, prices_file: Path) -> None:
    rows = long_rows() + [{"prompt_id": "q1", "prompt": PROMPTS[0][1], "task": "geo",
                           "model": "X", "effort": "high", "quality": 1.0},
                          {"prompt_id": "q2", "prompt": PROMPTS[1][1], "task": "math",
                           "model": "X", "effort": "", "quality": 0.5}]
    o = load_outcomes(write_jsonl(tmp_path / "o.jsonl", rows), models=load_models(prices_file))
    assert set(o.model_names) == {"X", "Y", "X@high"}
    high = o.models[o.model_names.index("X@high")]
    assert (high.input_price_per_mtok, high.output_price_per_mtok) == (1.0, 2.0)
    assert o.quality[0, o.model_names.index("X@high")] == 1.0
    assert np.isnan(o.quality[1, o.model_names.index("X@high")])


def test_an_unknown_effort_level_is_named(tmp_path: Path, prices_file: Path) -> None:
    rows = long_rows() + [{"prompt_id": "q1", "prompt": PROMPTS[0][1], "model": "X",
                           "effort": "extreme", "quality": 1.0}]
    with pytest.raises(DataError, match=r"line 7: effort 'extreme' is not a reasoning effort"):
        load_outcomes(write_jsonl(tmp_path / "o.jsonl", rows), models=load_models(prices_file))

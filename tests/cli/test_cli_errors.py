"""User errors the outside probe saw as tracebacks or silent wrong results.

Each must be one line (``polyroute: error: ...``, exit 2) and must come before the slow work:
the checks below pass a data file that does not exist, so an error about anything else proves
that the check ran before the data was loaded (let alone embedded).
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, run

from polyroute.data import load_outcomes, save_long_jsonl
from polyroute.data.outcomes import Outcomes
from polyroute.store import Attempt, Candidate, FeedbackRecord, RequestRecord, SQLiteStore


@pytest.fixture
def small_data(tmp_path: Path, two_cluster_factory) -> Path:
    return save_long_jsonl(two_cluster_factory(15).outcomes, tmp_path / "small.jsonl")


def latin1_csv(path: Path) -> Path:
    """A long CSV as a spreadsheet exports it on Windows: cp1252/Latin-1, not UTF-8."""
    lines = ["prompt_id,prompt,task,model,quality,cost"]
    for i in range(4):
        for model, q in (("A", 1.0), ("B", 0.0)):
            lines.append(f"p{i},Order a caf\xe9 number {i},food,{model},{q},0.001")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return path


# -- reading files ---------------------------------------------------------------------------------
def test_a_csv_that_is_not_utf8_is_one_line_naming_the_byte(capsys, tmp_path: Path) -> None:
    path = latin1_csv(tmp_path / "export.csv")
    offset = path.read_bytes().index(b"\xe9")
    code, _, err = run(capsys, "data", "check", str(path))
    assert_one_line_error(code, err, str(path), "line 2", f"byte offset {offset}", "UTF-8",
                          "--encoding")


def test_encoding_option_reads_a_latin1_file(capsys, tmp_path: Path) -> None:
    path = latin1_csv(tmp_path / "export.csv")
    code, out, err = run(capsys, "data", "check", str(path), "--encoding", "cp1252")
    assert code == 0, err
    assert "4 prompts × 2 models" in out
    assert load_outcomes(path, encoding="latin-1").prompts[0] == "Order a café number 0"


def test_an_unknown_encoding_is_one_line(capsys, tmp_path: Path) -> None:
    path = latin1_csv(tmp_path / "export.csv")
    code, _, err = run(capsys, "data", "check", str(path), "--encoding", "klingon")
    assert_one_line_error(code, err, "'klingon'")


def test_a_jsonl_that_is_not_utf8_fails_train_in_one_line(capsys, tmp_path: Path,
                                                          small_data: Path) -> None:
    raw = small_data.read_bytes().replace(b"Write a short poem", b"Write a s\xf6rt poem", 1)
    path = tmp_path / "bad.jsonl"
    path.write_bytes(raw)
    code, _, err = run(capsys, "train", "--router", "knn", "--featurizer", "tfidf", "--data",
                       str(path), "--out", str(tmp_path / "r"))
    offset = raw.index(b"\xf6")
    assert_one_line_error(code, err, str(path), f"byte offset {offset}")


_GZ = gzip.compress("".join(f'{{"prompt_id": "p{i}", "n": {i * i}}}\n'
                           for i in range(500)).encode())


@pytest.mark.parametrize("content", [b"not gzip at all", _GZ[: len(_GZ) // 2]],
                         ids=["not-gzip", "truncated"])
def test_a_corrupt_gz_is_one_line(capsys, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(content)
    code, _, err = run(capsys, "data", "check", str(path))
    assert_one_line_error(code, err, str(path), "gzip")


# -- train: parameters and the output path fail before the data is read ---------------------------
@pytest.mark.parametrize(("param", "fragments"), [
    ("k=abc", ("'knn'", "k must be an integer >= 1 or None", "'abc'")),
    ("k=-5", ("'knn'", "k must be", "-5")),
    ("cv=0", ("'knn'", "cv must be an integer >= 2", "0")),
])
def test_train_bad_param_fails_before_loading_data(capsys, tmp_path: Path, param: str,
                                                   fragments) -> None:
    code, _, err = run(capsys, "train", "--router", "knn", "--param", param, "--data",
                       str(tmp_path / "absent.jsonl"), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_train_unwritable_out_fails_before_loading_data(capsys, tmp_path: Path,
                                                        where: str) -> None:
    blocker = tmp_path / "passwd"
    blocker.write_text("root:x:0:0\n")
    target = blocker / "x" if where == "under-a-file" else blocker
    code, _, err = run(capsys, "train", "--router", "knn", "--data",
                       str(tmp_path / "absent.jsonl"), "--out", str(target))
    assert_one_line_error(code, err, "--out", str(blocker), "not a directory")
    assert blocker.read_text() == "root:x:0:0\n"


# -- evaluate -------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", ["0", "1", "-3"])
def test_evaluate_cv_below_two_is_refused(capsys, tmp_path: Path, small_data: Path,
                                          k: str) -> None:
    code, _, err = run(capsys, "evaluate", "--data", str(small_data), "--cv", k, "--featurizer",
                       "tfidf", "--routers", "knn", "--out", str(tmp_path / "e"))
    assert_one_line_error(code, err, "--cv", ">= 2", k)
    assert not (tmp_path / "e").exists()


def test_evaluate_unwritable_out_fails_before_loading_data(capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "evaluate", "--data", str(tmp_path / "absent.jsonl"),
                       "--routers", "knn", "--out", str(blocker / "sub"))
    assert_one_line_error(code, err, "--out", str(blocker), "not a directory")


def _save_models(outcomes: Outcomes, names: list[str], path: Path) -> Path:
    return save_long_jsonl(outcomes.select_models(names), path)


def test_evaluate_test_file_missing_a_trained_model_warns_naming_it(capsys, tmp_path: Path,
                                                                     two_cluster_split) -> None:
    train = save_long_jsonl(two_cluster_split[0].outcomes, tmp_path / "train.jsonl")
    test = _save_models(two_cluster_split[1].outcomes, ["C", "A"], tmp_path / "test.jsonl")
    code, _, err = run(capsys, "evaluate", "--train", str(train), "--test", str(test),
                       "--featurizer", "tfidf", "--routers", "knn", "--no-plot",
                       "--out", str(tmp_path / "tt"))
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("polyroute: warning:")]
    assert len(warnings) == 1 and "training only: B" in warnings[0], err
    assert "Traceback" not in err and "warnings.warn" not in err
    metrics = json.loads((tmp_path / "tt" / "metrics.json").read_text())
    assert set(metrics["zero_router"]["single_models"]) == {"A", "C"}


def test_evaluate_test_file_in_another_model_order_scores_the_same(capsys, tmp_path: Path,
                                                                   two_cluster_split) -> None:
    train = save_long_jsonl(two_cluster_split[0].outcomes, tmp_path / "train.jsonl")
    results = []
    for order in (["A", "B", "C"], ["C", "B", "A"]):
        test = _save_models(two_cluster_split[1].outcomes, order, tmp_path / "test.jsonl")
        out_dir = tmp_path / "".join(order)
        code, _, err = run(capsys, "evaluate", "--train", str(train), "--test", str(test),
                           "--featurizer", "tfidf", "--routers", "knn", "--no-plot",
                           "--out", str(out_dir))
        assert code == 0, err
        results.append(json.loads((out_dir / "metrics.json").read_text()))
    assert results[0]["routers"]["knn"]["aiq"] == pytest.approx(results[1]["routers"]["knn"]["aiq"])
    assert results[0]["routers"]["knn"]["oracle_gain_share"] > 0.8


def test_evaluate_files_sharing_no_model_fail_before_any_work(capsys, tmp_path: Path,
                                                              two_cluster_split) -> None:
    train = _save_models(two_cluster_split[0].outcomes, ["A"], tmp_path / "train.jsonl")
    test = _save_models(two_cluster_split[1].outcomes, ["B", "C"], tmp_path / "test.jsonl")
    code, _, err = run(capsys, "evaluate", "--train", str(train), "--test", str(test),
                       "--routers", "knn", "--no-plot", "--out", str(tmp_path / "tt"))
    assert_one_line_error(code, err, "share no name", "A", "B, C")
    assert not (tmp_path / "tt").exists()


# -- export-feedback writes what the file name asks for -------------------------------------------
@pytest.fixture
def feedback_store(tmp_path: Path) -> Path:
    path = tmp_path / "state.sqlite"
    store = SQLiteStore(path)
    try:
        for rid, model, prompt in (("r1", "alpha", "p one"), ("r2", "beta", "p two")):
            store.finish_request(RequestRecord(
                id=rid, ts=time.time(), status="ok", http_status=200, key_id="k1",
                requested_model="polyroute-auto", profile="polyroute-auto", policy="tradeoff",
                preference={"lam": 0.0}, prompt=prompt, candidates=(Candidate(model, 0.9, 0.001),),
                attempts=(Attempt(model, "ok", 200, None, 9.0),), chosen=model, latency_ms=12.5,
                decision_ms=1.5, prompt_tokens=10, completion_tokens=20, cost=0.01,
                cost_source="usage"))
        for rid, score in (("r1", 1.0), ("r2", 0.0)):
            store.add_feedback(FeedbackRecord(rid, score, time.time(), "k1")).result(10)
    finally:
        store.close()
    return path


@pytest.mark.parametrize("name", ["fb.csv", "fb.parquet", "fb.jsonl", "fb.csv.gz"])
def test_export_feedback_writes_the_format_its_name_asks_for(capsys, tmp_path: Path,
                                                             feedback_store: Path,
                                                             name: str) -> None:
    target = tmp_path / name
    code, out, err = run(capsys, "export-feedback", "--store", str(feedback_store), "-o",
                         str(target))
    assert code == 0, err
    head = gzip.decompress(target.read_bytes()) if name.endswith(".gz") else target.read_bytes()
    if ".csv" in name:
        assert head.startswith(b"prompt_id,prompt,task,model,quality,cost")
    elif name.endswith(".parquet"):
        assert head.startswith(b"PAR1")
    else:
        assert json.loads(head.splitlines()[0])["prompt_id"] == "r1"
    code, out, err = run(capsys, "data", "check", str(target))
    assert code == 0, err
    assert "2 prompts × 2 models" in out


def test_export_feedback_unknown_extension_fails_before_writing(capsys, tmp_path: Path,
                                                                feedback_store: Path) -> None:
    code, _, err = run(capsys, "export-feedback", "--store", str(feedback_store), "-o",
                       str(tmp_path / "fb.xlsx"))
    assert_one_line_error(code, err, "fb.xlsx", "unknown format", ".csv")
    assert not (tmp_path / "fb.xlsx").exists()


def test_export_feedback_output_under_a_file_is_one_line(capsys, tmp_path: Path,
                                                         feedback_store: Path) -> None:
    code, _, err = run(capsys, "export-feedback", "--store", str(feedback_store), "-o",
                       str(feedback_store / "fb.csv"))
    assert_one_line_error(code, err, str(feedback_store), "not a directory")


# -- route --floor says when no model is expected to reach the floor -------------------------------
@pytest.fixture
def best_single(tmp_path: Path, small_data: Path, capsys) -> Path:
    """Mean qualities A 0.55, B 0.5, C 0.4 for every prompt: no model reaches 0.99."""
    code, _, err = run(capsys, "train", "--router", "best-single", "--featurizer", "tfidf",
                       "--data", str(small_data), "--out", str(tmp_path / "r"))
    assert code == 0, err
    return tmp_path / "r"


def test_route_floor_out_of_reach_says_so(capsys, best_single: Path) -> None:
    code, out, err = run(capsys, "route", "--router", str(best_single), "--floor", "0.99",
                         "What is 2 plus 2?")
    assert code == 0, err
    assert "→" in out and "A" in out  # falls back to the best estimated model
    notes = [line for line in err.splitlines() if line.startswith("polyroute: note:")]
    assert len(notes) == 1 and "0.99" in notes[0] and "no model" in notes[0], err
    assert "0.550" in notes[0]  # the best estimate there is


def test_route_floor_out_of_reach_in_json(capsys, best_single: Path) -> None:
    code, out, err = run(capsys, "route", "--router", str(best_single), "--floor", "0.99",
                         "--json", "What is 2 plus 2?")
    assert code == 0, err
    row = json.loads(out)
    assert row["model"] == "A" and row["floor_reached"] is False
    code, out, err = run(capsys, "route", "--router", str(best_single), "--floor", "0.5",
                         "--json", "What is 2 plus 2?")
    row = json.loads(out)
    assert row["model"] == "B" and row["floor_reached"] is True
    assert "note" not in err

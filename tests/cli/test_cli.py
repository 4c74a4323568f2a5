"""The ``polyroute`` command end to end, through ``polyroute.cli.main`` and real processes.

Everything runs on small samples with the TF-IDF featurizer, so no encoder model is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyroute.cli import build_parser, main
from polyroute.data import save_long_jsonl
from polyroute.routers import available_routers

BUNDLED_MODELS = {"codegemma-7b", "gemma-2-9b-it", "llama-3.1-8b-instruct",
                  "llama-3.1-nemotron-51b-instruct", "llama-3.3-nemotron-super-49b-v1",
                  "llama3-chatqa-1.5-70b", "llama3-chatqa-1.5-8b", "mistral-7b-instruct-v0.3",
                  "qwen2.5-7b-instruct"}


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Call the CLI in-process; return (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m polyroute`` as a real process (inherits the test's environment)."""
    return subprocess.run([sys.executable, "-m", "polyroute", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120, env={**os.environ, "COLUMNS": "150"})


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("polyroute: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


Command = tuple[tuple[str, ...], argparse.ArgumentParser]


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every (sub)command path and its parser, found from the parser itself."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from commands(sub, (*prefix, name))


@pytest.fixture
def small_data(tmp_path: Path, two_cluster_factory) -> Path:
    """30 prompts, 2 tasks, 3 models in long JSONL with recorded costs."""
    return save_long_jsonl(two_cluster_factory(15).outcomes, tmp_path / "small.jsonl")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knn + TF-IDF router trained by the CLI on 300 bundled prompts."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYROUTE_CACHE_DIR", str(root / "cache"))
        code = main(["train", "--router", "knn", "--featurizer", "tfidf", "--sample", "300",
                     "--out", str(root / "router")])
    assert code == 0
    return root / "router"


# -- help ----------------------------------------------------------------------------------------
def test_every_command_has_help_mentioning_its_options(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "150")
    found = list(commands(build_parser()))
    assert {path for path, _ in found} >= {("evaluate",), ("train",), ("route",), ("data",),
                                           ("data", "check")}
    for path, parser in found:
        code, out, _ = run(capsys, *path, "--help")
        assert code == 0, path
        assert out.startswith("usage: polyroute " + " ".join(path))
        for action in parser._actions:
            for option in action.option_strings:
                assert option in out, f"{' '.join(path)} --help does not mention {option}"


def test_top_level_help_and_version(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in ("evaluate", "train", "route", "data"):
        assert name in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("polyroute ")


def test_help_in_a_real_process() -> None:
    proc = run_process("train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--router" in proc.stdout and "--featurizer" in proc.stdout
    # The router choices shown come from the registry.
    assert "knn" in proc.stdout and "mlp" in proc.stdout


# -- data check ----------------------------------------------------------------------------------
def test_data_check_describes_a_good_file(capsys, small_data: Path) -> None:
    code, out, err = run(capsys, "data", "check", str(small_data))
    assert code == 0, err
    assert "ok" in out and "30 prompts × 3 models, 2 tasks, 90/90" in out
    for name in ("A", "B", "C"):
        assert f"\n│ {name} " in out or f" {name} " in out
    assert "0.550" in out  # A's mean quality


def test_data_check_with_a_models_file(capsys, tmp_path: Path, two_cluster_factory,
                                       models_file: Path) -> None:
    rows = [json.loads(line) for line in
            save_long_jsonl(two_cluster_factory(3).outcomes, tmp_path / "d.jsonl")
            .read_text().splitlines()]
    data = tmp_path / "elsewhere" / "nocost.jsonl"  # no models.json beside it
    data.parent.mkdir()
    data.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "cost"}) + "\n"
                            for r in rows))
    code, _, err = run(capsys, "data", "check", str(data))
    assert_one_line_error(code, err, str(data), "'A'", "price")
    code, out, err = run(capsys, "data", "check", str(data), "--models", str(models_file),
                         "--output-tokens", "100")
    assert code == 0, err
    assert "0.001000" in out  # A: 100 output tokens × $10 per million


def test_data_check_bad_file_in_a_real_process(tmp_path: Path, small_data: Path) -> None:
    lines = small_data.read_text().splitlines()
    bad = json.loads(lines[4])
    bad["quality"] = 1.5
    lines[4] = json.dumps(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = run_process("data", "check", str(path))
    assert_one_line_error(proc.returncode, proc.stderr, str(path), "line 5", "'quality'", "1.5")
    assert proc.stdout == ""


@pytest.mark.parametrize(("content", "fragments"), [
    pytest.param("", ("no records",), id="empty"),
    pytest.param('{"prompt_id": "a"\n', ("line 1", "JSON"), id="bad-json"),
    pytest.param('{"prompt_id": "a", "prompt": "x", "model": "A"}\n', ("line 1", "'quality'"),
                 id="missing-field"),
])
def test_data_check_bad_files(capsys, tmp_path: Path, content: str, fragments) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code, _, err = run(capsys, "data", "check", str(path))
    assert_one_line_error(code, err, str(path), *fragments)


def test_data_check_missing_and_unknown_files(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "data", "check", str(tmp_path / "absent.jsonl"))
    assert_one_line_error(code, err, "absent.jsonl", "no such file")
    (tmp_path / "data.xlsx").write_text("x")
    code, _, err = run(capsys, "data", "check", str(tmp_path / "data.xlsx"))
    assert_one_line_error(code, err, "data.xlsx", "unknown format")


# -- train and route -----------------------------------------------------------------------------
def test_train_writes_a_router_directory(trained: Path) -> None:
    meta = json.loads((trained / "polyroute.json").read_text())
    assert meta["router"] == "knn" and meta["featurizer"] == "tfidf"
    assert {m["name"] for m in meta["cost_model"]["models"]} == BUNDLED_MODELS
    assert (trained / "router_state.json").is_file()


def test_route_one_prompt(capsys, trained: Path) -> None:
    code, out, err = run(capsys, "route", "--router", str(trained),
                         "Solve for x: 3x + 5 = 20. Show your working.")
    assert code == 0, err
    assert "→" in out
    chosen = out.split("→", 1)[1].split()[0]
    assert chosen in BUNDLED_MODELS
    assert sum(name in out for name in BUNDLED_MODELS) == 9  # every candidate is ranked


def test_route_jsonl_as_json(capsys, trained: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"What is the capital of Italy?"\n\n'
                       '{"prompt": "Write a Python function that reverses a list."}\n'
                       '{"prompt": "Which gas do plants absorb?", "id": 3}\n')
    code, out, err = run(capsys, "route", "--router", str(trained), "--jsonl", str(prompts),
                         "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in rows] == ["What is the capital of Italy?",
                                          "Write a Python function that reverses a list.",
                                          "Which gas do plants absorb?"]
    for row in rows:
        assert row["model"] == row["candidates"][0]
        assert set(row["candidates"]) == BUNDLED_MODELS
        assert set(row["estimated_quality"]) == BUNDLED_MODELS
        assert all(0 <= q <= 1 for q in row["estimated_quality"].values())
        assert all(c > 0 for c in row["estimated_cost"].values())


def test_route_preferences(capsys, trained: Path) -> None:
    prompt = "What is 12 times 13?"
    code, out, _ = run(capsys, "route", "--router", str(trained), "--json", "--lam", "1e6",
                       prompt)
    assert code == 0
    row = json.loads(out)
    cheapest = min(row["estimated_cost"].values())
    assert row["estimated_cost"][row["model"]] == cheapest
    code, out, _ = run(capsys, "route", "--router", str(trained), "--json", "--floor", "0",
                       prompt)
    assert code == 0 and json.loads(out)["estimated_cost"][json.loads(out)["model"]] == cheapest
    code, out, _ = run(capsys, "route", "--router", str(trained), "--json", "--budget", "1",
                       prompt)
    assert code == 0
    row = json.loads(out)
    assert row["estimated_quality"][row["model"]] == max(row["estimated_quality"].values())


def test_route_in_a_real_process(trained: Path) -> None:
    proc = run_process("route", "--router", str(trained), "--json", "Name three prime numbers.")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] in BUNDLED_MODELS


def test_route_user_errors(capsys, trained: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "route", "--router", str(trained))
    assert_one_line_error(code, err, "either a prompt or --jsonl")
    code, _, err = run(capsys, "route", "--router", str(tmp_path), "hello")
    assert_one_line_error(code, err, "not a trained router", "polyroute train")
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('"fine"\n{"text": "no prompt key"}\n')
    code, _, err = run(capsys, "route", "--router", str(trained), "--jsonl", str(bad))
    assert_one_line_error(code, err, str(bad), "line 2")
    code, _, err = run(capsys, "route", "--router", str(trained), "--floor", "1.5", "hi")
    assert_one_line_error(code, err, "floor")


def test_train_user_errors(capsys, tmp_path: Path, small_data: Path) -> None:
    code, _, err = run(capsys, "train", "--router", "nope", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "'nope'", "knn", "mlp")
    code, _, err = run(capsys, "train", "--router", "oracle", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "'oracle'", "evaluation only")
    code, _, err = run(capsys, "train", "--router", "knn", "--param", "k", "--out",
                       str(tmp_path / "r"), "--data", str(small_data))
    assert_one_line_error(code, err, "KEY=VALUE")
    code, _, err = run(capsys, "train", "--param", "kk=3", "--featurizer", "tfidf",
                       "--data", str(small_data), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "kk")
    code, _, err = run(capsys, "train", "--models", str(small_data), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "--models needs --data")
    code, _, err = run(capsys, "train", "--sample", "1", "--featurizer", "tfidf", "--data",
                       str(small_data), "--out", str(tmp_path / "r"))
    # Fails while training, after the "training ..." note: the error is still one clean line.
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("polyroute: error: cannot fit TF-IDF")
    for bad in ("0", "-5"):
        code, _, err = run(capsys, "train", "--sample", bad, "--featurizer", "tfidf",
                           "--data", str(small_data), "--out", str(tmp_path / "r"))
        assert_one_line_error(code, err, "sample size", bad)
    assert not (tmp_path / "r").exists()


def test_train_with_params_on_own_data(capsys, tmp_path: Path, small_data: Path) -> None:
    code, out, err = run(capsys, "train", "--router", "knn", "--param", "k=3", "--featurizer",
                         "tfidf", "--data", str(small_data), "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert "k=3" in out and "A, B, C" in out
    code, out, err = run(capsys, "route", "--router", str(tmp_path / "r"), "--json",
                         "What is 5 plus 8? Compute the sum and show the arithmetic.")
    assert code == 0, err
    assert json.loads(out)["model"] == "A"


# -- evaluate ------------------------------------------------------------------------------------
def test_evaluate_on_a_bundled_sample(capsys, tmp_path: Path) -> None:
    out_dir = tmp_path / "eval"
    code, out, err = run(capsys, "evaluate", "--sample", "400", "--featurizer", "tfidf",
                         "--routers", "best-single,knn", "--out", str(out_dir))
    assert code == 0, err
    assert "knn" in out and "oracle" in out and "zero router" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert set(metrics["routers"]) == {"best-single", "knn"}
    assert {"aiq", "best_quality", "cpt95", "points"} <= set(metrics["routers"]["knn"])
    assert metrics["n_train"] + metrics["n_test"] == 400
    assert metrics["setup"]["mode"] == "split"
    assert metrics["oracle"]["aiq"] >= metrics["routers"]["knn"]["aiq"]
    assert (out_dir / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_evaluate_cross_validation(capsys, tmp_path: Path, small_data: Path) -> None:
    out_dir = tmp_path / "cv"
    code, out, err = run(capsys, "evaluate", "--data", str(small_data), "--cv", "3",
                         "--featurizer", "tfidf", "--routers", "best-single,knn", "--no-plot",
                         "--out", str(out_dir))
    assert code == 0, err
    assert "3-fold cross-validation" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["splits"] == ["fold1", "fold2", "fold3"]
    assert set(metrics["routers"]["knn"]["per_split"]) == {"fold1", "fold2", "fold3"}
    assert metrics["setup"]["mode"] == "cv"
    assert not (out_dir / "curves.png").exists()


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_evaluate_leave_task_out(capsys, tmp_path: Path, small_data: Path) -> None:
    out_dir = tmp_path / "lto"
    code, out, err = run(capsys, "evaluate", "--data", str(small_data), "--leave-task-out",
                         "--featurizer", "tfidf", "--routers", "knn", "--no-plot",
                         "--out", str(out_dir))
    assert code == 0, err
    assert "leave-task-out" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["splits"] == ["math", "poetry"]
    assert metrics["setup"]["mode"] == "leave-task-out"


def test_evaluate_with_train_and_test_files(capsys, tmp_path: Path, two_cluster_split) -> None:
    train = save_long_jsonl(two_cluster_split[0].outcomes, tmp_path / "train.jsonl")
    test = save_long_jsonl(two_cluster_split[1].outcomes, tmp_path / "test.jsonl")
    code, _, err = run(capsys, "evaluate", "--train", str(train), "--test", str(test),
                       "--featurizer", "tfidf", "--routers", "knn", "--no-plot",
                       "--out", str(tmp_path / "tt"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "tt" / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_test"]) == (60, 20)
    assert metrics["routers"]["knn"]["oracle_gain_share"] > 0.8


def test_evaluate_unknown_router_lists_the_choices(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "evaluate", "--routers", "best-single,nope", "--featurizer",
                       "tfidf", "--out", str(tmp_path / "x"))
    assert_one_line_error(code, err, "'nope'", *available_routers())
    assert not (tmp_path / "x").exists()


def test_evaluate_user_errors(capsys, tmp_path: Path, small_data: Path) -> None:
    code, _, err = run(capsys, "evaluate", "--train", str(small_data), "--routers", "knn")
    assert_one_line_error(code, err, "--train and --test go together")
    code, _, err = run(capsys, "evaluate", "--train", str(small_data), "--test",
                       str(small_data), "--cv", "3", "--routers", "knn")
    assert_one_line_error(code, err, "cannot be combined")
    code, _, err = run(capsys, "evaluate", "--data", str(small_data), "--test-size", "2",
                       "--featurizer", "tfidf", "--routers", "knn", "--out", str(tmp_path / "e"))
    assert_one_line_error(code, err, "test_size")


def test_usage_errors_exit_2(capsys) -> None:
    code, _, err = run(capsys, "train")
    assert code == 2 and "--out" in err
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and "invalid choice" in err

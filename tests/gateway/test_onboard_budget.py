"""Onboarding's hard dollar cap, retries of failed calls, and the user's own prompt file."""

from __future__ import annotations

import json

import pytest
import yaml
from gateway_world import KEY
from replay import ReplayBackend
from standin import ServerThread, StandIn

from polyroute.cli import main
from polyroute.config import load_config
from polyroute.gateway import hash_key
from polyroute.store import open_store


def _config(tmp_path, urls: dict[str, str], store: dict | str | None = None, **router) -> str:
    """A config of ``urls``' backends (pricey, so budgets bite); the breaker never opens here,
    so every retry reaches the backend. ``store`` defaults to a SQLite file beside it."""
    config = {"backends": [{"name": n, "base_url": f"{u}/v1", "input_price_per_mtok": 50.0,
                            "output_price_per_mtok": 50.0} for n, u in urls.items()],
              "router": {"path": "router", "featurizer": "tfidf", **router},
              "keys": [{"id": "one", "sha256": hash_key(KEY)}],
              "store": store if store is not None else {"path": "state.sqlite"},
              "breaker": {"failure_threshold": 1000}}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _answers(config_path: str):
    store = open_store(load_config(config_path).store, readonly=True)
    try:
        return store.calibration_answers()
    finally:
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_setting(request):
    """The config's ``store``: a SQLite file, or (the one-string form) a PostgreSQL URL."""
    if request.param == "sqlite":
        yield {"path": "state.sqlite"}
        return
    from pgschema import fresh_schema

    with fresh_schema("onboard") as url:
        yield url


def test_the_budget_is_a_hard_cap_and_a_second_run_continues(tmp_path, capsys, store_setting):
    replay = ReplayBackend("qwen2.5-7b-instruct")
    with ServerThread(replay) as server:
        cfg = _config(tmp_path, {"new": server.url}, store=store_setting)
        # At $50 per million tokens a call's worst case is a few cents: $0.15 pays for a few.
        assert main(["onboard", "--config", cfg, "--per-model", "30", "--budget", "0.15",
                     "--yes"]) == 0
        assert "stopped at the budget" in capsys.readouterr().err
        first = _answers(cfg)
        assert 1 < len(first) < 30 and sum(a.cost for a in first) <= 0.15
        sent = replay.requests
        assert main(["onboard", "--config", cfg, "--per-model", "30", "--yes"]) == 0
        # Only the prompts not answered yet were sent: none paid twice.
        assert replay.requests == sent + (30 - len(first))
    assert len(_answers(cfg)) == 30


def test_failed_calls_are_kept_as_failed_and_asked_again(tmp_path, capsys):
    flaky = StandIn("flaky")
    flaky.mode = "500"
    with ServerThread(flaky) as server:
        cfg = _config(tmp_path, {"flaky": server.url})
        code = main(["onboard", "--config", cfg, "--per-model", "3", "--yes"])
        assert code == 2  # nothing graded: no router can be trained yet
        assert "no backend has a graded answer" in capsys.readouterr().err
        failed = _answers(cfg)
        assert len(failed) == 3 and all(a.error and a.quality is None for a in failed)
        assert all("Bearer" not in (a.error or "") for a in failed)
        calls = flaky.calls
        assert calls == 3 * 3  # each prompt tried once and retried twice, no fallback
        flaky.mode = "ok"
        assert main(["onboard", "--config", cfg, "--per-model", "3", "--yes"]) == 0
        assert flaky.calls == calls + 3
    assert all(a.error is None for a in _answers(cfg))


def test_own_prompts_need_a_judge_or_a_metric(tmp_path, capsys):
    prompts = tmp_path / "mine.jsonl"
    prompts.write_text(json.dumps({"prompt": "What is 6 times 7?", "reference": "42",
                                   "metric": "GSM8K"}) + "\n" +
                       json.dumps({"prompt": "Write a haiku about rain."}) + "\n")
    with ServerThread(StandIn("a")) as server:
        cfg = _config(tmp_path, {"a": server.url})
        assert main(["onboard", "--config", cfg, "--prompts", str(prompts), "--yes"]) == 2
        assert "--judge" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "metric": "nonsense"}) + "\n")
    assert main(["onboard", "--config", cfg, "--prompts", str(bad), "--yes"]) == 2
    assert "no grader for metric 'nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--per-model", "0"], ["--budget", "-1"],
                                  ["--router", "nope"]])
def test_bad_arguments_are_one_line_errors_before_anything_is_sent(tmp_path, capsys, flag):
    backend = StandIn("a")
    with ServerThread(backend) as server:
        cfg = _config(tmp_path, {"a": server.url})
        assert main(["onboard", "--config", cfg, "--yes", *flag]) == 2
    assert capsys.readouterr().err.startswith("polyroute: error:")
    assert backend.calls == 0


def test_own_prompts_graded_by_reference_and_by_a_judge_backend(tmp_path, capsys):
    prompts = tmp_path / "mine.jsonl"
    rows = [{"prompt_id": "calc", "prompt": "What is 6 times 7?", "reference": "42",
             "metric": "GSM8K", "task": "math"},
            {"prompt_id": "poem", "task": "poetry", "prompt": "Write a haiku about rain."}]
    rows += [{"prompt_id": f"more{i}", "task": "poetry",
              "prompt": f"Write a haiku about rain and {w}."} for i, w in
             enumerate(["wind", "snow", "rain clouds", "wind and snow"])]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model, judge = StandIn("model"), StandIn("judge")
    model.reply = "Six times seven is 42."
    judge.reply = "The haiku follows the form. Score: 0.75"
    with ServerThread(model) as m, ServerThread(judge) as j:
        cfg = _config(tmp_path, {"model": m.url, "judge": j.url})
        assert main(["onboard", "--config", cfg, "--prompts", str(prompts), "--judge", "judge",
                     "--yes"]) == 0
    kept = {(a.backend, a.prompt_id): a for a in _answers(cfg)}
    assert kept[("model", "calc")].quality == 1.0      # by its reference (GSM8K grader)
    assert kept[("model", "poem")].quality == 0.75     # by the judge
    assert kept[("judge", "poem")].quality == 0.75     # every backend answers own prompts
    assert kept[("judge", "calc")].quality == 0.0      # "Score: 0.75" holds no 42
    # Each judged answer cost one judge call: the judge saw 5 per backend besides its own 6.
    assert judge.calls == 6 + 2 * 5
    assert "grading by the judge cost $" in capsys.readouterr().out

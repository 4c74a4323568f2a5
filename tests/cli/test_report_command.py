"""``polyroute report`` end to end: a config, its store with logged shadow-mode traffic, the
terminal table, JSON and a plot."""

from __future__ import annotations

import json

import pytest
import yaml

from polyroute.cli import main
from polyroute.cli.report import parse_when
from polyroute.errors import ConfigError
from polyroute.store import (
    Candidate,
    RequestRecord,
    RequestStart,
    ShadowComparison,
    SQLiteStore,
)

NOW = 1_700_000_000.0


@pytest.fixture
def config_path(tmp_path):
    store_path = tmp_path / "store.sqlite"
    store = SQLiteStore(store_path)
    for i in range(6):
        rid = f"req-{i}"
        store.start_request(RequestStart(rid, NOW - 3600 + i, "k", "polyroute-auto",
                                         "polyroute-auto", False))
        store.finish_request(RequestRecord(
            id=rid, ts=NOW - 3600 + i, status="ok", http_status=200, key_id="k",
            requested_model="polyroute-auto", profile="polyroute-auto",
            candidates=(Candidate("big", 0.8, 0.02), Candidate("small", 0.7, 0.001)),
            chosen="big", prompt_tokens=1000, completion_tokens=1000, cost=0.02,
            explain={"shadow": {"served": "big", "routed": "small"}}))
    store.record_shadow_comparison(ShadowComparison("req-0", NOW, "polyroute-auto", "big",
                                                    "small", "tie", 0.02, 0.001, 0.0005))
    store.close()
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({
        "backends": [{"name": "big", "base_url": "http://127.0.0.1:9/v1",
                      "input_price_per_mtok": 10, "output_price_per_mtok": 10},
                     {"name": "small", "base_url": "http://127.0.0.1:9/v1",
                      "input_price_per_mtok": 0.5, "output_price_per_mtok": 0.5}],
        "router": {"train": {"data": str(tmp_path / "none.jsonl")}},
        "server": {"require_auth": False},
        "store": {"path": str(store_path)}}))
    return path


def test_report_prints_json_and_a_plot(config_path, tmp_path, capsys):
    plot = tmp_path / "report.png"
    assert main(["report", "--config", str(config_path), "--since", "2020-01-01", "--json",
                 "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out.split("\nplot written")[0])
    assert report["default"] == "big" and report["requests"] == 6
    # small at 0.5 $/Mtok answers 1k + 1k tokens for $0.001; the judged one cost $0.001 too
    assert report["total_cost"]["routed"] == pytest.approx(6 * 0.001)
    assert report["savings_vs_default"]["value"] == pytest.approx(0.95)
    assert report["verdicts"]["tie"] == 1
    assert plot.stat().st_size > 0


def test_report_table_is_readable(config_path, capsys):
    assert main(["report", "--config", str(config_path), "--since", "2020-01-01"]) == 0
    text = capsys.readouterr().out
    assert "always-default" in text and "savings vs always-default: 95.0 %" in text


def test_an_empty_window_is_a_one_line_error(config_path, capsys):
    assert main(["report", "--config", str(config_path), "--since", "1h"]) == 2
    assert "no routed requests" in capsys.readouterr().err


def test_when_reads_spans_and_dates():
    assert parse_when("7d", now=NOW) == NOW - 7 * 86400
    assert parse_when("30m", now=NOW) == NOW - 1800
    assert parse_when("2026-11-01") == 1793491200.0
    with pytest.raises(ConfigError, match="give a span"):
        parse_when("last tuesday")

"""The example config's demo client key is public: a gateway still accepting it says so."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from polyroute.cli import main
from polyroute.gateway.auth import hash_key
from polyroute.gateway.service import DEMO_KEY_SHA256

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.yaml"


def test_the_constant_is_the_example_configs_demo_key():
    keys = yaml.safe_load(EXAMPLE.read_text())["keys"]
    assert DEMO_KEY_SHA256 in [k["sha256"] for k in keys]
    assert hash_key("pr-demo-key-change-me") == DEMO_KEY_SHA256


def test_the_gateway_warns_at_start(gateway_factory, standins, caplog):
    caplog.set_level(logging.WARNING)
    gateway_factory({"keys": [{"id": "demo", "sha256": DEMO_KEY_SHA256}]})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("demo" in w and "keys[0]" in w for w in warnings)


def test_no_warning_for_other_keys(gateway_factory, standins, caplog):
    caplog.set_level(logging.WARNING)
    gateway_factory()
    assert not [r for r in caplog.records if "demo key" in r.getMessage()]


def test_config_check_warns(tmp_path, capsys):
    raw = {"backends": [{"name": "alpha", "base_url": "http://127.0.0.1:9/v1",
                         "input_price_per_mtok": 1, "output_price_per_mtok": 2}],
           "router": {"path": "router"},
           "keys": [{"id": "ok", "sha256": "a" * 64}, {"id": "demo", "sha256": DEMO_KEY_SHA256}]}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["config", "check", str(path), "--no-router"]) == 0
    err = capsys.readouterr().err
    assert "polyroute: warning:" in err and "keys[1]" in err and "demo" in err

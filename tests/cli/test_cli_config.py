"""``polyroute config check`` says where shared state lives, and checks the Redis it names."""

from __future__ import annotations

import yaml

from polyroute.cli import main


def _write(tmp_path, **more) -> str:
    config = {"backends": [{"name": "a", "base_url": "http://127.0.0.1:9/v1",
                            "input_price_per_mtok": 1, "output_price_per_mtok": 1}],
              "router": {"path": str(tmp_path)}, "server": {"require_auth": False},
              "store": {"path": str(tmp_path / "s.sqlite")}, **more}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_config_check_says_state_is_per_process_without_shared(tmp_path, capsys):
    assert main(["config", "check", "--no-router", _write(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "shared state: per-process (no `shared:` in the config)" in out


def test_config_check_fails_on_an_unreachable_shared_redis(tmp_path, capsys):
    path = _write(tmp_path, shared={"url": "redis://127.0.0.1:1/0", "timeout": 0.2})
    assert main(["config", "check", "--no-router", path]) == 2
    assert "shared: cannot reach Redis at redis://127.0.0.1:1/0" in capsys.readouterr().err

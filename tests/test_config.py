"""The gateway config: one validated tree, messages naming the bad key, file < env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polyroute.cli import main
from polyroute.config import (
    DEFAULT_PROFILE,
    backend_api_keys,
    load_config,
    validate_config,
)
from polyroute.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gateway.yaml"
DIGEST = "a" * 64


def minimal(**changes) -> dict:
    raw = {
        "backends": [{"name": "alpha", "base_url": "http://127.0.0.1:9/v1",
                      "input_price_per_mtok": 1, "output_price_per_mtok": 2}],
        "router": {"path": "router"},
        "keys": [{"id": "one", "sha256": DIGEST}],
    }
    raw.update(changes)
    return raw


def write(tmp_path: Path, raw: dict | str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, source="gw.yaml")
    return str(exc.value)


def test_the_example_config_is_valid():
    config = load_config(EXAMPLE, env={})
    assert len(config.backends) == 3
    assert config.router.path == EXAMPLE.parent / "../routers/knn-minilm"
    assert config.store.path == EXAMPLE.parent / "polyroute.sqlite"
    profiles = config.effective_profiles()
    assert profiles["polyroute-auto"].lam == 0.5  # filled from default_policy
    assert profiles["polyroute-good-enough"].floor == 0.7


def test_defaults():
    config = validate_config(minimal())
    assert config.backends[0].upstream_model == "alpha"
    assert config.backends[0].base_url == "http://127.0.0.1:9/v1/"
    assert list(config.effective_profiles()) == [DEFAULT_PROFILE]
    assert config.server.port == 8000 and config.store.path == Path("polyroute.sqlite")


@pytest.mark.parametrize("change, expected", [
    ({"backends": []}, "backends: must list at least 1 item(s)"),
    ({"backends": [{"name": "a", "base_url": "ftp://x", "input_price_per_mtok": 1,
                    "output_price_per_mtok": 1}]}, "backends[0].base_url: must be an http"),
    ({"backends": [{"name": "a", "base_url": "http://x", "input_price_per_mtok": -1,
                    "output_price_per_mtok": 1}]},
     "backends[0].input_price_per_mtok: Input should be greater than or equal to 0 (got -1)"),
    ({"backends": [{"name": "a", "base_url": "http://x", "output_price_per_mtok": 1}]},
     "backends[0].input_price_per_mtok: required key is missing"),
    ({"backends": [{"name": "a", "base_url": "http://x", "input_price_per_mtok": 1,
                    "output_price_per_mtok": 1, "timout": 5}]},
     "backends[0].timout: unknown key"),
    ({"backends": [{"name": "a", "base_url": "http://x", "input_price_per_mtok": 1,
                    "output_price_per_mtok": 1, "timeout": 0}]},
     "backends[0].timeout: Input should be greater than 0"),
    ({"backends": [{"name": "a", "base_url": "http://x", "input_price_per_mtok": 1,
                    "output_price_per_mtok": 1, "api_key": "sk-123"}]},
     "backends[0].api_key: API keys are never read from the config file"),
    ({"backends": [{"name": "a", "base_url": "http://x", "input_price_per_mtok": 1,
                    "output_price_per_mtok": 1, "api_key_env": "sk-123"}]},
     "backends[0].api_key_env: must be the *name* of an environment variable"),
    ({"backends": [{"name": "a b", "base_url": "http://x", "input_price_per_mtok": 1,
                    "output_price_per_mtok": 1}]}, "backends[0].name: backend name 'a b'"),
    ({"router": {}}, "router: give exactly one of router.path"),
    ({"router": {"path": "r", "train": {"data": "d.jsonl"}}}, "give exactly one"),
    ({"default_policy": {"lam": 1, "floor": 0.5}},
     "default_policy: set only one of lam, budget or floor (got lam, floor)"),
    ({"profiles": {"cheap": {"floor": 1.5}}},
     "profiles.cheap.floor: Input should be less than or equal to 1"),
    ({"profiles": {"alpha": {"lam": 1}}}, "profiles: alpha is also a backend name"),
    ({"profiles": {"p": {"models": ["zeta"]}}}, "profiles.p.models: unknown backend(s) zeta"),
    ({"keys": [{"id": "one", "sha256": "abc"}]}, "keys[0].sha256: must be the 64-character"),
    ({"keys": [{"id": "one", "sha256": DIGEST, "key": "pr-1"}]},
     "keys[0].key: client keys are stored hashed"),
    ({"keys": [{"id": "one", "sha256": DIGEST}, {"id": "one", "sha256": "b" * 64}]},
     "keys: duplicate key id(s) one"),
    ({"keys": []}, "keys: no client keys configured"),
    ({"keys": [{"id": "one", "sha256": DIGEST, "spend_period": "week"}]},
     "keys[0].spend_period: Input should be 'total', 'day' or 'month'"),
    ({"server": {"port": 70000}}, "server.port: Input should be less than or equal to 65535"),
    ({"breaker": {"cooldown": 60, "max_cooldown": 10}}, "breaker.max_cooldown must be >="),
    ({"extra_section": {}}, "extra_section: unknown key"),
    ({"backends": [{"name": "a", "base_url": "http://x", "input_price_per_mtok": 1,
                    "output_price_per_mtok": 1, "cached_input_price_per_mtok": 2}]},
     "cached_input_price_per_mtok (2) must be <= input_price_per_mtok (1)"),
    ({"conversations": {"id_from": ["cookie"]}}, "conversations.id_from[0]: Input should be"),
    ({"conversations": {"idle_s": 0}}, "conversations.idle_s: Input should be greater than 0"),
    ({"conversations": {"hit_rate": 1.5}}, "conversations.hit_rate: Input should be less"),
])
def test_bad_values_name_the_key_and_why(change, expected):
    message = error_of(minimal(**change))
    assert message.startswith("gw.yaml: invalid configuration")
    assert expected in message, message


def test_every_problem_is_reported_at_once():
    message = error_of(minimal(server={"port": -1, "max_body_bytes": 1}))
    assert "2 problems" in message
    assert "server.port" in message and "server.max_body_bytes" in message


def test_digest_accepts_a_prefix_and_capitals():
    config = validate_config(minimal(keys=[{"id": "one", "sha256": "sha256:" + "A" * 64}]))
    assert config.keys[0].sha256 == "a" * 64


def test_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml", env={})
    with pytest.raises(ConfigError, match="line 3, column 1: not valid YAML"):
        load_config(write(tmp_path, "backends:\n  - name: [oops\n"), env={})
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(write(tmp_path, ""), env={})
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"), env={})


def test_precedence_file_then_env_then_flags(tmp_path):
    path = write(tmp_path, minimal(server={"port": 8001, "host": "127.0.0.1"}))
    assert load_config(path, env={}).server.port == 8001
    env = {"POLYROUTE__SERVER__PORT": "8002", "POLYROUTE__SERVER__REQUIRE_AUTH": "false",
           "POLYROUTE__BACKENDS__0__TIMEOUT": "7.5", "UNRELATED": "x"}
    config = load_config(path, env=env)
    assert config.server.port == 8002 and config.server.require_auth is False
    assert config.backends[0].timeout == 7.5
    config = load_config(path, env=env, overrides={"server.port": 8003})
    assert config.server.port == 8003 and config.server.host == "127.0.0.1"


def test_bad_env_override_names_the_key(tmp_path):
    path = write(tmp_path, minimal())
    with pytest.raises(ConfigError, match=r"server.port: Input should be a valid integer"):
        load_config(path, env={"POLYROUTE__SERVER__PORT": "eighty"})
    with pytest.raises(ConfigError, match="not an index"):
        load_config(path, env={"POLYROUTE__BACKENDS__5__TIMEOUT": "1"})


def test_relative_paths_are_relative_to_the_file(tmp_path):
    config = load_config(write(tmp_path, minimal(store={"path": "state/s.sqlite"})), env={})
    assert config.router.path == tmp_path / "router"
    assert config.store.path == tmp_path / "state/s.sqlite"


def test_backend_keys_come_from_the_environment():
    config = validate_config(minimal(backends=[
        {"name": "a", "base_url": "http://x", "input_price_per_mtok": 0,
         "output_price_per_mtok": 0, "api_key_env": "A_KEY"},
        {"name": "b", "base_url": "http://x", "input_price_per_mtok": 0,
         "output_price_per_mtok": 0}]))
    assert backend_api_keys(config, {"A_KEY": "sk-a"}) == {"a": "sk-a", "b": None}
    with pytest.raises(ConfigError, match=r"backends\[0\].api_key_env: environment variable "
                                          r"A_KEY \(the key for backend 'a'\) is not set"):
        backend_api_keys(config, {})


# -- `polyroute config check` ----------------------------------------------------------------------
@pytest.fixture
def trained_router(tmp_path) -> Path:
    import numpy as np

    from polyroute import ModelInfo, Outcomes, Pipeline

    texts = [f"question number {i} about {'math' if i % 2 else 'poems'}" for i in range(20)]
    outcomes = Outcomes(tuple(f"p{i}" for i in range(20)), tuple(texts), ("t",) * 20,
                        (ModelInfo("alpha", 1, 1), ModelInfo("beta", 1, 1)),
                        np.tile([1.0, 0.0], (20, 1)), np.full((20, 2), 1e-4))
    return Pipeline("knn", featurizer="tfidf", cache=False).fit(outcomes).save(tmp_path / "r")


def test_config_check_accepts_a_good_config(tmp_path, trained_router, capsys):
    path = write(tmp_path, minimal(router={"path": str(trained_router)}))
    assert main(["config", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert "OK" in captured.out
    assert "router models without a backend (never chosen): beta" in captured.err


def test_config_check_rejects_bad_configs(tmp_path, trained_router, capsys):
    bad = write(tmp_path, minimal(server={"port": "x"}), "bad.yaml")
    assert main(["config", "check", str(bad)]) == 2
    assert "server.port" in capsys.readouterr().err
    no_router = write(tmp_path, minimal(router={"path": str(tmp_path / "nothing")}), "nr.yaml")
    assert main(["config", "check", str(no_router)]) == 2
    assert "not a trained router directory" in capsys.readouterr().err
    assert main(["config", "check", str(no_router), "--no-router"]) == 0
    unknown = write(tmp_path, minimal(router={"path": str(trained_router)}, backends=[
        {"name": "zeta", "base_url": "http://x", "input_price_per_mtok": 0,
         "output_price_per_mtok": 0}]), "unknown.yaml")
    # A router that knows none of the backends no longer stops the gateway: it starts, says so
    # and says how to onboard them.
    assert main(["config", "check", str(unknown)]) == 0
    err = capsys.readouterr().err
    assert "no backend is named after a model the router knows" in err
    assert "zeta" in err and "polyroute onboard" in err


def test_serve_refuses_a_bad_config_before_starting(tmp_path, capsys):
    path = write(tmp_path, minimal(backends=[]))
    assert main(["serve", "--config", str(path)]) == 2
    assert "backends" in capsys.readouterr().err


def test_new_key_and_hash_key(capsys):
    from polyroute.gateway import hash_key

    assert main(["config", "new-key", "--id", "team-a", "--spend-limit", "10"]) == 0
    out = capsys.readouterr().out
    key = out.split("stored anywhere): ")[1].split()[0]
    snippet = yaml.safe_load(out.split("config entry:\n")[1])
    assert snippet["keys"][0] == {"id": "team-a", "sha256": hash_key(key), "spend_limit": 10.0,
                                  "spend_period": "month"}
    validate_config(minimal(keys=snippet["keys"]))
    assert main(["config", "hash-key", key]) == 0
    assert capsys.readouterr().out.strip() == hash_key(key)


def test_the_cache_section():
    config = validate_config(minimal())
    assert not config.cache.enabled and not config.cache.share_across_keys
    assert set(config.cache.categories) == {config.cache.default_category}
    cfg = validate_config(minimal(cache={"enabled": True, "default_category": "chat",
                                         "categories": {"chat": {"threshold": 0.9},
                                                        "code": {"ttl_s": 60}}}))
    assert cfg.cache.categories["chat"].threshold == 0.9
    assert "cache.default_category 'default' is not in cache.categories" in error_of(
        minimal(cache={"categories": {"chat": {}}}))
    assert "cache.categories.chat.threshold" in error_of(
        minimal(cache={"categories": {"default": {}, "chat": {"threshold": 1.5}}}))


def test_the_store_is_a_path_or_a_postgresql_url(tmp_path):
    as_string = load_config(write(tmp_path, minimal(store="state/s.sqlite")), env={})
    assert as_string.store.url is None and as_string.store.path == tmp_path / "state/s.sqlite"
    url = "postgresql://polyroute@db.internal:5432/gateway"
    pg = load_config(write(tmp_path, minimal(store=url)), env={})
    assert pg.store.url == url and pg.store.location == url
    section = validate_config(minimal(store={"url": url, "queue_limit": 50}))
    assert section.store.url == url and section.store.queue_limit == 50
    # Overrides reach a store given as one string (it is read as its section first).
    moved = load_config(write(tmp_path, minimal(store="s.sqlite")),
                        env={"POLYROUTE__STORE__URL": url})
    assert moved.store.url == url


@pytest.mark.parametrize("store, expected", [
    ("mysql://u@h/db", "store.url: must be a PostgreSQL URL"),
    ("postgresql://u:hunter2@h/db", "store.url: holds a password"),
    ("postgresql://u@h/db?password=hunter2", "store.url: holds a password"),
    ({"url": "postgresql://h/db", "queue_limit": 0}, "store.queue_limit"),
])
def test_a_bad_store_says_what_to_write(store, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        validate_config(minimal(store=store))
    assert "hunter2" not in str(err.value)

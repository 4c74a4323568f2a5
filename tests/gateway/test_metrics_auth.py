"""``/metrics`` needs a client key whenever keys are configured (``server.metrics_auth``, on by
default) and answers a missing or wrong key exactly as chat does; ``/healthz`` is always open."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, base_config

from polyroute.config import load_config, validate_config
from polyroute.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.yaml"
MISSING = {"error": {"message": "missing API key: send it as 'Authorization: Bearer <key>'",
                     "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
INVALID = {"error": {"message": "invalid API key", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}}
MALFORMED = {"error": {"message": "malformed Authorization header: expected 'Bearer <key>'",
                       "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


def _get(gw, path: str, header: str | None):
    with gw.client(key=None) as c:
        return c.get(path, headers={"authorization": header} if header else {})


def _is_prometheus_text(r) -> bool:
    return (r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            and "# TYPE polyroute_requests_total counter" in r.text)


@pytest.mark.parametrize("header, expected", [
    (None, MISSING), ("Bearer wrong-key", INVALID), ("Basic abc", MALFORMED),
    ("Bearer", MALFORMED)])
def test_metrics_without_a_valid_key_answers_like_chat(gateway, standins, header, expected):
    with gateway.client(key=None) as c:
        chat = c.post("/v1/chat/completions",
                      headers={"authorization": header} if header else {},
                      json={"model": "polyroute-auto",
                            "messages": [{"role": "user", "content": "hi"}]})
    r = _get(gateway, "/metrics", header)
    assert (r.status_code, r.json()) == (chat.status_code, chat.json()) == (401, expected)
    assert r.headers["content-type"] == "application/json"
    assert "polyroute_" not in r.text
    assert _get(gateway, "/healthz", header).json()["status"] == "ok"


@pytest.mark.parametrize("key", [KEY, OTHER_KEY])
def test_metrics_with_a_valid_key_is_prometheus_text(gateway, standins, key):
    assert gateway.chat(MATH_PROMPT, key=key).status_code == 200
    r = _get(gateway, "/metrics", f"Bearer {key}")
    assert _is_prometheus_text(r), r.text
    assert 'polyroute_requests_total{route="polyroute-auto",status="200"} 1.0' in r.text


def test_metrics_auth_false_leaves_metrics_open_but_not_chat(gateway_factory, standins):
    gw = gateway_factory({"server": {"metrics_auth": False}})
    assert gw.config.server.metrics_auth is False
    assert _is_prometheus_text(_get(gw, "/metrics", None))
    assert _is_prometheus_text(_get(gw, "/metrics", f"Bearer {KEY}"))
    assert gw.chat(MATH_PROMPT, key=None).json() == MISSING  # chat still needs its key
    assert _get(gw, "/healthz", None).status_code == 200


def test_without_keys_metrics_is_open(gateway_factory, standins):
    gw = gateway_factory({"server": {"require_auth": False}, "keys": []})
    assert gw.config.server.metrics_auth is True  # the default, with nothing to check against
    assert _is_prometheus_text(_get(gw, "/metrics", None))
    assert _get(gw, "/healthz", None).json()["status"] == "ok"


def test_anonymous_chat_does_not_open_metrics_while_keys_exist(gateway_factory, standins):
    gw = gateway_factory({"server": {"require_auth": False}})
    assert gw.chat(MATH_PROMPT, key=None).status_code == 200
    r = _get(gw, "/metrics", None)
    assert (r.status_code, r.json()) == (401, MISSING)
    assert (_get(gw, "/metrics", "Bearer wrong-key").json()) == INVALID
    assert _is_prometheus_text(_get(gw, "/metrics", f"Bearer {KEY}"))
    assert _get(gw, "/healthz", None).json()["status"] == "ok"


# -- config ------------------------------------------------------------------------------------
def _raw(tmp_path, **server) -> dict:
    raw = base_config(tmp_path / "router", tmp_path / "store.sqlite", {"alpha": "http://x"})
    return {**raw, "profiles": {}, "server": server}


def test_metrics_auth_defaults_to_true_and_is_in_the_example(tmp_path):
    assert validate_config(_raw(tmp_path)).server.metrics_auth is True
    assert validate_config(_raw(tmp_path, metrics_auth=False)).server.metrics_auth is False
    assert load_config(EXAMPLE, env={}).server.metrics_auth is True


def test_metrics_auth_env_override(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(_raw(tmp_path)))
    config = load_config(path, env={"POLYROUTE__SERVER__METRICS_AUTH": "false"})
    assert config.server.metrics_auth is False


@pytest.mark.parametrize("value", ["sometimes", 2, [True]])
def test_metrics_auth_must_be_a_boolean(tmp_path, value):
    with pytest.raises(ConfigError) as exc:
        validate_config(_raw(tmp_path, metrics_auth=value), source="gw.yaml")
    message = str(exc.value)
    assert message.startswith("gw.yaml: invalid configuration"), message
    assert "server.metrics_auth: Input should be a valid boolean" in message, message

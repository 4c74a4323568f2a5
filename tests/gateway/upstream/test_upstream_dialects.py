"""The upstream dialect seam: the config's names and the registry agree, ``openai`` is the
identity, ``anthropic`` speaks the Messages API's URL and headers, and bad config is refused
with a message that says what to fix."""

from __future__ import annotations

import json

import httpx
import pytest

from polyroute.config import DIALECT_NAMES, BackendConfig, BreakerConfig, validate_config
from polyroute.errors import ConfigError
from polyroute.gateway.backends import Backend
from polyroute.gateway.sse import SSERelay
from polyroute.gateway.upstream import DIALECTS

PRICES = {"input_price_per_mtok": 1.0, "output_price_per_mtok": 2.0}


def backend(**fields) -> Backend:
    config = BackendConfig(**{"name": "b", "base_url": "https://api.example.com", **PRICES,
                              **fields})
    return Backend(config, "sk-secret", BreakerConfig())


def test_the_config_names_every_registered_dialect():
    assert set(DIALECT_NAMES) == set(DIALECTS)


def test_openai_is_the_identity():
    b = backend(base_url="https://api.example.com/v1")
    assert b.dialect.name == "openai"
    assert b.completions_url == httpx.URL("https://api.example.com/v1/chat/completions")
    assert b.dialect.auth_headers("k") == {"authorization": "Bearer k"}
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "seed": 3}
    sent = json.loads(b.payload(body, stream=True, add_usage=True))
    assert sent == {**body, "model": "b", "stream_options": {"include_usage": True}}
    assert b.dialect.answer(b"anything") == b"anything"
    assert b.dialect.error(b"anything") == b"anything"
    assert isinstance(b.dialect.relay(strip_usage=True, include_usage=False,
                                      max_event_bytes=2048), SSERelay)


def test_anthropic_url_and_headers():
    b = backend(dialect="anthropic", model="claude-haiku-4-5",
                anthropic={"version": "2023-06-01"})
    assert b.completions_url == httpx.URL("https://api.example.com/v1/messages")
    assert b.dialect.auth_headers("sk-ant") == {"x-api-key": "sk-ant",
                                                "anthropic-version": "2023-06-01"}
    sent = json.loads(b.payload({"messages": [{"role": "user", "content": "hi"}]},
                                stream=False, add_usage=False))
    assert sent["model"] == "claude-haiku-4-5" and sent["max_tokens"] == 4096


def config_with(**fields) -> dict:
    return {"backends": [{"name": "b", "base_url": "https://api.anthropic.com", **PRICES,
                          **fields}]}


@pytest.mark.parametrize("fields,words", [
    ({"dialect": "claude"}, ["dialect", "openai, anthropic", "'claude'"]),
    ({"anthropic": {"version": "2023-06-01"}}, ["anthropic", "dialect: openai"]),
    ({"dialect": "anthropic", "base_url": "https://api.anthropic.com/v1"},
     ["base_url", "/v1/messages"]),
    ({"dialect": "anthropic", "anthropic": {"thinking_budgets": {"low": 100}}},
     ["thinking_budgets", "1024"]),
    ({"dialect": "anthropic", "anthropic": {"thinking": "keep"}}, ["thinking"]),
    ({"dialect": "anthropic", "anthropic": {"default_max_tokens": 0}}, ["default_max_tokens"]),
])
def test_bad_dialect_config_is_refused_with_a_clear_message(fields, words):
    with pytest.raises(ConfigError) as exc:
        validate_config(config_with(**fields))
    for word in words:
        assert word in str(exc.value)

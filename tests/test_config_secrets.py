"""Config: no credential is accepted inside a backend URL (it belongs in ``api_key_env``)."""

from __future__ import annotations

import pytest

from polyroute.config import validate_config
from polyroute.errors import ConfigError


def minimal() -> dict:
    return {"backends": [{"name": "alpha", "base_url": "http://127.0.0.1:9/v1",
                          "input_price_per_mtok": 1, "output_price_per_mtok": 2}],
            "router": {"path": "router"}, "keys": [{"id": "one", "sha256": "a" * 64}]}


@pytest.mark.parametrize("url", ["http://user:secret@127.0.0.1:9/v1",
                                 "https://sk-abc@api.example.com/v1",
                                 "https://api.example.com/v1?api_key=sk-abc",
                                 "https://api.example.com/v1?key=abc&x=1",
                                 "https://api.example.com/v1?access_token=abc"])
def test_a_credential_in_base_url_is_refused(url):
    raw = minimal()
    raw["backends"][0]["base_url"] = url
    with pytest.raises(ConfigError) as err:
        validate_config(raw)
    message = str(err.value)
    assert "api_key_env" in message and "backends[0].base_url" in message
    assert "secret" not in message and "sk-abc" not in message  # the error does not repeat it


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "https://api.example.com/v1?v=2",
                                 "https://api.example.com/openai/v1"])
def test_plain_urls_still_pass(url):
    raw = minimal()
    raw["backends"][0]["base_url"] = url
    assert validate_config(raw).backends[0].base_url.startswith(url.split("?")[0])

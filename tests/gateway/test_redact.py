"""redact(): configured keys and credential-looking strings never survive into stored text."""

from __future__ import annotations

import pytest

from polyroute.gateway.redact import redact


@pytest.mark.parametrize("text, secret", [
    ("error: bad key Bearer abc.def-123_XYZ given", "abc.def-123_XYZ"),
    ("invalid api key sk-proj-AbCdEf0123456789xyz", "sk-proj-AbCdEf0123456789xyz"),
    ("anthropic sk-ant-api03-AbCdEf0123456789", "sk-ant-api03-AbCdEf0123456789"),
    ("aws AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
    ("url https://x/v1?api_key=hunter2hunter2&y=1", "hunter2hunter2"),
    ('headers {"x-api-key": "k-9f8e7d6c5b4a"}', "k-9f8e7d6c5b4a"),
    ("x-api-key: k-9f8e7d6c5b4a", "k-9f8e7d6c5b4a"),
    ("your token 0123456789abcdef0123456789abcdef is expired",
     "0123456789abcdef0123456789abcdef"),
    ("secret=Zm9vYmFyYmF6cXV4cXV1eGNvcmdl", "Zm9vYmFyYmF6cXV4cXV1eGNvcmdl"),
])
def test_credential_patterns_are_removed(text, secret):
    out = redact(text)
    assert secret not in out and "[redacted]" in out


def test_configured_keys_are_removed_verbatim_whatever_they_look_like():
    out = redact("you sent plainword42 twice: plainword42", ["plainword42", "", None])
    assert "plainword42" not in out and out.count("[redacted]") == 2


def test_ordinary_error_text_is_kept():
    text = "model upstream-alpha is overloaded, please retry in 20 seconds (HTTP 503)"
    assert redact(text) == text

"""Remove credentials from upstream text before it is stored or logged.

Why: backends echo what they were sent — an error body may quote the ``Authorization`` header,
a URL with its ``api_key`` parameter, or a key it rejected. The gateway keeps an excerpt of such
bodies in ``attempts.error`` for operators; the excerpt must not turn the store into a key file.
The configured keys are removed verbatim (whatever they look like), then anything shaped like a
credential: ``Bearer <token>``, ``sk-…`` / ``sk-ant-…`` keys, AWS access key ids,
``api_key=…`` / ``x-api-key: …`` pairs and long tokens following ``key``, ``token`` or ``secret``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REDACTED", "redact", "scrub_keys"]

REDACTED = "[redacted]"

_PATTERNS = [
    # Authorization schemes: the token after them.
    re.compile(r"(?i)\b((?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{6,}"),
    # Provider key shapes: OpenAI/Anthropic style, AWS access key ids, Google API keys.
    re.compile(r"\bsk-(?:ant-)?[A-Za-z0-9_-]{8,}"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"\bAIza[A-Za-z0-9_-]{30,}"),
    # name = value / "name": "value" / name: value, for names that carry credentials.
    re.compile(r"""(?ix)
        (\b[\w-]*(?:api[_-]?key|apikey|access[_-]?key|secret|token|password|passwd|auth)[\w-]*
         ["']?\s*[:=]\s*["']?)
        [^\s"'&,;}]{4,}"""),
    # A long hex or base64 token shortly after the words key / token / secret.
    re.compile(r"""(?ix)(\b(?:key|token|secret)\b[^A-Za-z0-9\n]{0,20}(?:\w+\s+){0,2})
        [A-Za-z0-9+/_-]{20,}={0,2}"""),
]


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with each of ``secrets`` and every credential-looking string replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_prefix, text)
    return text


def _keep_prefix(m: re.Match[str]) -> str:
    """Keep a pattern's leading group (the name or scheme), replace the value."""
    return (m.group(1) if m.re.groups else "") + REDACTED


def scrub_keys(content: bytes, secrets: Iterable[str | None]) -> bytes:
    """``content`` with each of ``secrets`` replaced verbatim (a relayed body stays valid
    JSON: a key never holds a quote, and nothing else is touched)."""
    for secret in secrets:
        if secret:
            content = content.replace(secret.encode(), REDACTED.encode())
    return content

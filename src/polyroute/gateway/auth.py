"""Client keys: only their SHA-256 digests are kept, in the config and in the store.

Why plain SHA-256 and not a password hash: gateway keys are long random tokens (``new_key``), so
a fast hash is not brute-forceable and costs ~1 µs per request; a deliberately slow hash would add
milliseconds to every call for no gain.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from polyroute.config import KeyConfig
from polyroute.gateway.errors import APIError

KEY_PREFIX = "pr-"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored in place of ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random client key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """Looks a presented bearer token up by its digest. ``required=False`` lets anonymous
    requests in (key id ``None``) but still identifies requests that present a valid key."""

    def __init__(self, keys: Sequence[KeyConfig], *, required: bool) -> None:
        self._by_digest = {k.sha256: k for k in keys}
        self.required = required

    def authenticate(self, authorization: str | None, *,
                     required: bool | None = None) -> KeyConfig | None:
        """The key for an ``Authorization: Bearer <key>`` header; 401 if missing or unknown.
        ``required`` overrides the ring's own setting for one endpoint (``/metrics``)."""
        if required is None:
            required = self.required
        if not authorization:
            if required:
                raise APIError(401, "missing API key: send it as 'Authorization: Bearer <key>'",
                               code="invalid_api_key")
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise APIError(401, "malformed Authorization header: expected 'Bearer <key>'",
                           code="invalid_api_key")
        key = self._by_digest.get(hash_key(token))
        if key is None:
            raise APIError(401, "invalid API key", code="invalid_api_key")
        return key

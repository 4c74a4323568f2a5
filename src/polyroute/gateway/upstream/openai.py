"""The identity dialect: the backend speaks Chat Completions, as the gateway does inside."""

from __future__ import annotations

from typing import Any

import httpx

from polyroute.gateway import fastjson
from polyroute.gateway.sse import SSERelay


class OpenAIDialect:
    """``POST {base_url}chat/completions`` with a bearer key; bodies pass as they are."""

    name = "openai"

    def endpoint(self, base_url: httpx.URL) -> httpx.URL:
        return base_url.join("chat/completions")

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def payload(self, body: dict[str, Any], *, model: str, stream: bool,
                add_usage: bool) -> bytes:
        """The client's body with this backend's model id (and a usage request if asked)."""
        upstream = dict(body)
        upstream["model"] = model
        if stream and add_usage:
            options = dict(upstream.get("stream_options") or {})
            options["include_usage"] = True
            upstream["stream_options"] = options
        return fastjson.dumps(upstream)

    def answer(self, content: bytes) -> bytes:
        return content

    def error(self, content: bytes) -> bytes:
        return content

    def relay(self, *, strip_usage: bool, include_usage: bool,
              max_event_bytes: int) -> SSERelay:
        return SSERelay(strip_usage, max_event_bytes)

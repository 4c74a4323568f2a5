"""The ``anthropic`` dialect: a backend that speaks Anthropic's Messages API.

``POST {base_url}v1/messages`` with ``x-api-key`` and ``anthropic-version``; the bodies and the
stream are translated by one module per direction (:mod:`.anthropic_request`,
:mod:`.anthropic_response`, :mod:`.anthropic_stream`), with the backend's ``anthropic`` settings.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from polyroute.config import AnthropicConfig
from polyroute.gateway.upstream.anthropic_request import to_messages_request
from polyroute.gateway.upstream.anthropic_response import to_chat_completion, to_openai_error
from polyroute.gateway.upstream.anthropic_stream import AnthropicStreamRelay
from polyroute.gateway.upstream.errors import UpstreamFormatError


class AnthropicDialect:
    name = "anthropic"

    def __init__(self, settings: AnthropicConfig) -> None:
        self.settings = settings
        self._keep_thinking = settings.thinking == "reasoning_content"

    def endpoint(self, base_url: httpx.URL) -> httpx.URL:
        return base_url.join("v1/messages")

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self.settings.version}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def payload(self, body: dict[str, Any], *, model: str, stream: bool,
                add_usage: bool) -> bytes:
        """The Messages request (Anthropic always reports a stream's usage: nothing to add)."""
        request = to_messages_request(body, model=model, stream=stream, settings=self.settings)
        return json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()

    def answer(self, content: bytes) -> bytes:
        try:
            message = json.loads(content)
        except ValueError:
            raise UpstreamFormatError("the answer is not JSON") from None
        completion = to_chat_completion(message, keep_thinking=self._keep_thinking)
        return json.dumps(completion, ensure_ascii=False, separators=(",", ":")).encode()

    def error(self, content: bytes) -> bytes:
        return to_openai_error(content)

    def relay(self, *, strip_usage: bool, include_usage: bool,
              max_event_bytes: int) -> AnthropicStreamRelay:
        return AnthropicStreamRelay(strip_usage=strip_usage, include_usage=include_usage,
                                    max_event_bytes=max_event_bytes,
                                    keep_thinking=self._keep_thinking)

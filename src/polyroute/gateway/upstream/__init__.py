"""Upstream dialects: the API a backend speaks, behind one small interface.

Why a seam: everything between the client-facing parse and the recorder sees one internal shape,
a Chat Completions request and a Chat Completions answer (JSON, or ``chat.completion.chunk``
events). A backend that speaks another API (``dialect: anthropic``) translates at the edge of
:mod:`~polyroute.gateway.forward` — its URL and auth headers, the request body, a complete
answer, a relayed error body, and the stream (a judge with the interface of
:class:`~polyroute.gateway.sse.SSERelay` that reads the upstream's events and hands on Chat
Completions chunks). ``openai`` is
the identity dialect: what the gateway did before dialects existed, byte for byte.

A dialect is chosen from the backend's config by :func:`dialect_for`, through :data:`DIALECTS`,
never by an ``isinstance`` in the forward path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from polyroute.gateway.upstream.errors import UpstreamFormatError, UpstreamUnsupported

if TYPE_CHECKING:
    from polyroute.config import BackendConfig

__all__ = ["DIALECTS", "StreamRelay", "UpstreamDialect", "UpstreamFormatError",
           "UpstreamUnsupported", "dialect_for"]


class StreamRelay(Protocol):
    """What the forward path and the streaming relay need of a stream's judge (see
    :class:`~polyroute.gateway.sse.SSERelay`): ``feed``/``finish`` return Chat Completions SSE
    bytes to send, ``error`` why the stream cannot go on, ``completed`` whether it said all it
    will, ``events`` how many upstream data events arrived, ``usage`` the tokens it reported."""

    @property
    def error(self) -> str | None: ...

    @property
    def usage(self) -> dict[str, Any] | None: ...

    @property
    def events(self) -> int: ...

    @property
    def completed(self) -> bool: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class UpstreamDialect(Protocol):
    """One upstream API. Methods that read upstream bytes raise :class:`UpstreamFormatError`
    for an answer that is not what the API promises (the forward path's ``bad_response``);
    :meth:`payload` raises :class:`UpstreamUnsupported` for a request the API cannot express."""

    name: str

    def endpoint(self, base_url: httpx.URL) -> httpx.URL:
        """The URL a request is POSTed to."""
        ...

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """Headers that carry the key (and API version) on every request."""
        ...

    def payload(self, body: dict[str, Any], *, model: str, stream: bool,
                add_usage: bool) -> bytes:
        """The upstream request body for the internal (Chat Completions) ``body``."""
        ...

    def answer(self, content: bytes) -> bytes:
        """A 200 non-streamed answer as Chat Completions JSON bytes."""
        ...

    def error(self, content: bytes) -> bytes:
        """A relayed (non-retryable) error body in the OpenAI error shape, when it can be read."""
        ...

    def relay(self, *, strip_usage: bool, include_usage: bool,
              max_event_bytes: int) -> StreamRelay:
        """A judge for one streamed answer. ``strip_usage``: the gateway asked the upstream for
        usage itself (drop that chunk); ``include_usage``: the client asked for usage (send it)."""
        ...


def _openai(config: BackendConfig) -> UpstreamDialect:
    from polyroute.gateway.upstream.openai import OpenAIDialect
    return OpenAIDialect()


def _anthropic(config: BackendConfig) -> UpstreamDialect:
    from polyroute.config import AnthropicConfig
    from polyroute.gateway.upstream.anthropic import AnthropicDialect
    return AnthropicDialect(config.anthropic or AnthropicConfig())


#: Dialect name (``BackendConfig.dialect``) → constructor from the backend's config.
DIALECTS: dict[str, Callable[[BackendConfig], UpstreamDialect]] = {
    "openai": _openai,
    "anthropic": _anthropic,
}


def dialect_for(config: BackendConfig) -> UpstreamDialect:
    """The dialect a backend speaks (its config was validated against :data:`DIALECTS`)."""
    return DIALECTS[config.dialect](config)

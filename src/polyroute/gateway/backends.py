"""One OpenAI-compatible upstream: a pooled ``httpx.AsyncClient``, a concurrency limit, a breaker.

Why one client per backend: each keeps its own keep-alive pool sized to the backend's
``max_concurrency``, so a slow backend cannot starve the others of connections, and the gateway's
semaphore (not httpx's pool timeout) decides what happens when a backend is full.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import httpx

from polyroute.config import BackendConfig, BreakerConfig
from polyroute.gateway.breaker import CircuitBreaker

#: Upstream statuses that mean "this backend cannot serve now": try the next candidate.
#: 401/403/404 are included because they are the gateway's misconfiguration (key, model id),
#: never the client's fault; other 4xx describe the client's request and are relayed as is.
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 429})


def is_retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUS


class Backend:
    """A configured backend; open the client inside the event loop with :meth:`open`."""

    def __init__(self, config: BackendConfig, api_key: str | None, breaker: BreakerConfig) -> None:
        self.config = config
        self.name = config.name
        self.api_key = api_key
        self.breaker = CircuitBreaker(breaker.failure_threshold, breaker.cooldown,
                                      breaker.max_cooldown)
        self.client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self.in_flight = 0

    def open(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        cfg = self.config
        headers = {"accept-encoding": "identity", "content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        self.client = httpx.AsyncClient(
            base_url=cfg.base_url,
            headers=headers,
            timeout=httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout),
            limits=httpx.Limits(max_connections=cfg.max_concurrency,
                                max_keepalive_connections=cfg.max_concurrency,
                                keepalive_expiry=30.0),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )
        self._slots = asyncio.Semaphore(cfg.max_concurrency)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    # -- concurrency -----------------------------------------------------------------------------
    async def acquire(self) -> bool:
        """Take a request slot, waiting at most ``queue_timeout``; False if none came free."""
        assert self._slots is not None, "Backend.open() was not called"
        if not self._slots.locked():
            await self._slots.acquire()
        else:
            with anyio.move_on_after(self.config.queue_timeout):
                await self._slots.acquire()
                self.in_flight += 1
                return True
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        assert self._slots is not None
        self.in_flight -= 1
        self._slots.release()

    # -- requests --------------------------------------------------------------------------------
    def payload(self, body: dict[str, Any], *, stream: bool, add_usage: bool) -> bytes:
        """The upstream request body: the client's, with this backend's model id."""
        upstream = dict(body)
        upstream["model"] = self.config.upstream_model
        if stream and add_usage:
            options = dict(upstream.get("stream_options") or {})
            options["include_usage"] = True
            upstream["stream_options"] = options
        return json.dumps(upstream, ensure_ascii=False, separators=(",", ":")).encode()

    def build_request(self, content: bytes, request_id: str) -> httpx.Request:
        assert self.client is not None, "Backend.open() was not called"
        return self.client.build_request("POST", "chat/completions", content=content,
                                         headers={"x-request-id": request_id})

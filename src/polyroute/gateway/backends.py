"""One upstream: a pooled HTTP client, a concurrency limit, a breaker.

Why a pool per backend: each backend keeps its own keep-alive connections sized to its
``max_concurrency``, so a slow backend cannot starve the others of connections, and the gateway's
semaphore (not the client's pool timeout) decides what happens when a backend is full. The client
library (aiohttp or httpx) is :mod:`~polyroute.gateway.upstream_http`'s choice. The API it
speaks (its URL, auth headers and bodies) is its :mod:`~polyroute.gateway.upstream` dialect.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import anyio
import httpx

from polyroute.config import BackendConfig, BreakerConfig
from polyroute.gateway.breaker import CLOSED, CircuitBreaker
from polyroute.gateway.upstream import UpstreamDialect, dialect_for
from polyroute.gateway.upstream_http import ClientKind, UpstreamClient, open_client

#: Upstream statuses that mean "this backend cannot serve now": try the next candidate.
#: 401/403/404 are included because they are the gateway's misconfiguration (key, model id),
#: never the client's fault; other 4xx describe the client's request and are relayed as is.
#: Any 3xx is one too: an API does not redirect a completion, so a redirect means a wrong
#: ``base_url`` (or a captive portal), and relaying it would send the client elsewhere.
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 429})


def is_retryable(status: int) -> bool:
    return status >= 500 or 300 <= status < 400 or status in RETRYABLE_STATUS


class Lease:
    """One request's slot on a backend: the client to use, returned with :meth:`release`."""

    __slots__ = ("_backend", "client", "url", "_released")

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        assert backend.client is not None, "Backend.open() was not called"
        self.client: UpstreamClient = backend.client
        self.url = backend.completions_url
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._backend._release()


class Backend:
    """A configured backend; open its clients inside the event loop with :meth:`open`."""

    def __init__(self, config: BackendConfig, api_key: str | None, breaker: BreakerConfig) -> None:
        self.config = config
        self.name = config.name
        self.api_key = api_key
        self.breaker = CircuitBreaker(breaker.failure_threshold, breaker.cooldown,
                                      breaker.max_cooldown)
        self.client: UpstreamClient | None = None
        #: The API this backend speaks: URL, headers, and translation of bodies and streams.
        self.dialect: UpstreamDialect = dialect_for(config)
        #: Built once, not per request.
        self.completions_url = str(self.dialect.endpoint(httpx.URL(config.base_url)))
        self._slots: asyncio.Semaphore | None = None
        self.in_flight = 0
        #: Requests waiting for a free slot (part of the load a balancer sees).
        self.waiting = 0

    @property
    def load(self) -> int:
        """Requests holding or waiting for a slot on this backend."""
        return self.in_flight + self.waiting

    @property
    def available(self) -> str | None:
        """Why this backend cannot take a request now (its breaker is not closed, every slot is
        taken), or None if it can. Reads state only: it hands out no half-open probe."""
        if self.breaker.state != CLOSED:
            return f"breaker {self.breaker.state.replace('_', '-')}"
        if self.in_flight >= self.config.max_concurrency:
            return "no free slot"
        return None

    def open(self, ssl_context: ssl.SSLContext | None = None,
             client: ClientKind = "aiohttp") -> None:
        """Create the pooled client (of the library ``client``); pass one ``ssl_context`` for
        all backends (building one per client loads the CA bundle each time, ~15 ms apiece)."""
        cfg = self.config
        headers = {"accept-encoding": "identity", "content-type": "application/json",
                   **self.dialect.auth_headers(self.api_key)}
        self.client = open_client(client, base_headers=headers,
                                  max_connections=cfg.max_concurrency, timeout=cfg.timeout,
                                  connect_timeout=cfg.connect_timeout, ssl_context=ssl_context)
        self._slots = asyncio.Semaphore(cfg.max_concurrency)

    async def aclose(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    # -- concurrency -----------------------------------------------------------------------------
    async def acquire(self) -> Lease | None:
        """A request slot, waiting at most ``queue_timeout``; None if none came free.

        The client always has a free connection because at most ``max_concurrency`` slots
        (= its pool's size) are out.
        """
        assert self._slots is not None, "Backend.open() was not called"
        if self._slots.locked():
            self.waiting += 1
            try:
                with anyio.move_on_after(self.config.queue_timeout):
                    await self._slots.acquire()
                    return self._lease()
            finally:
                self.waiting -= 1
            return None
        await self._slots.acquire()
        return self._lease()

    def _lease(self) -> Lease:
        self.in_flight += 1
        return Lease(self)

    def _release(self) -> None:
        assert self._slots is not None
        self.in_flight -= 1
        self._slots.release()

    # -- requests --------------------------------------------------------------------------------
    def payload(self, body: dict[str, Any], *, stream: bool, add_usage: bool) -> bytes:
        """The upstream request body: the client's, with this backend's model id, in its dialect
        (:class:`~polyroute.gateway.upstream.UpstreamUnsupported` if it cannot be said there)."""
        if self.config.effort is not None:  # an effort-level candidate sends its level
            body = {**body, "reasoning_effort": self.config.effort}
        return self.dialect.payload(body, model=self.config.upstream_model, stream=stream,
                                    add_usage=add_usage)

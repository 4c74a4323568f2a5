"""One OpenAI-compatible upstream: pooled ``httpx.AsyncClient``s, a concurrency limit, a breaker.

Why pools per backend: each backend keeps its own keep-alive connections sized to its
``max_concurrency``, so a slow backend cannot starve the others of connections, and the gateway's
semaphore (not httpx's pool timeout) decides what happens when a backend is full.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import anyio
import httpx

from polyroute.config import BackendConfig, BreakerConfig
from polyroute.gateway import fastjson
from polyroute.gateway.breaker import CircuitBreaker

#: Upstream statuses that mean "this backend cannot serve now": try the next candidate.
#: 401/403/404 are included because they are the gateway's misconfiguration (key, model id),
#: never the client's fault; other 4xx describe the client's request and are relayed as is.
#: Any 3xx is one too: an API does not redirect a completion, so a redirect means a wrong
#: ``base_url`` (or a captive portal), and relaying it would send the client elsewhere.
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 429})


def is_retryable(status: int) -> bool:
    return status >= 500 or 300 <= status < 400 or status in RETRYABLE_STATUS


#: Connections per pooled client. httpcore's pool walks every connection (and polls each idle
#: one's socket) each time a request starts or ends, so one pool of 64 connections costs ~8x a
#: pool of 8 per request; a backend therefore holds several small pools.
POOL_SIZE = 8


class Lease:
    """One request's slot on a backend: the pooled client to use, returned with :meth:`release`."""

    __slots__ = ("_backend", "_index", "client", "url", "_released")

    def __init__(self, backend: Backend, index: int) -> None:
        self._backend = backend
        self._index = index
        self.client = backend._clients[index]
        self.url = backend.completions_url
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._backend._release(self._index)


class Backend:
    """A configured backend; open its clients inside the event loop with :meth:`open`."""

    def __init__(self, config: BackendConfig, api_key: str | None, breaker: BreakerConfig) -> None:
        self.config = config
        self.name = config.name
        self.api_key = api_key
        self.breaker = CircuitBreaker(breaker.failure_threshold, breaker.cooldown,
                                      breaker.max_cooldown)
        self._clients: list[httpx.AsyncClient] = []
        #: Parsed once: httpx would otherwise parse and merge the URL on every request.
        self.completions_url = httpx.URL(config.base_url).join("chat/completions")
        self._busy: list[int] = []
        self._slots: asyncio.Semaphore | None = None
        self.in_flight = 0
        #: Requests waiting for a free slot (part of the load a balancer sees).
        self.waiting = 0

    @property
    def load(self) -> int:
        """Requests holding or waiting for a slot on this backend."""
        return self.in_flight + self.waiting

    def open(self, ssl_context: ssl.SSLContext | None = None) -> None:
        """Create the pooled clients; pass one ``ssl_context`` for all backends (building one
        per client loads the CA bundle each time, ~15 ms apiece)."""
        cfg = self.config
        headers = {"accept-encoding": "identity", "content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        size = min(POOL_SIZE, cfg.max_concurrency)
        n_pools = -(-cfg.max_concurrency // size)
        self._clients = [httpx.AsyncClient(
            base_url=cfg.base_url,
            headers=headers,
            timeout=httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout),
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size,
                                keepalive_expiry=30.0),
            follow_redirects=False,
            trust_env=False,
            verify=ssl_context if ssl_context is not None else True,
        ) for _ in range(n_pools)]
        self._busy = [0] * n_pools
        self._slots = asyncio.Semaphore(cfg.max_concurrency)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients = []

    # -- concurrency -----------------------------------------------------------------------------
    async def acquire(self) -> Lease | None:
        """A request slot, waiting at most ``queue_timeout``; None if none came free.

        The slot's client is the least busy pool, which always has a free connection because
        at most ``max_concurrency`` slots (= the pools' total size) are out.
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
        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[index] += 1
        self.in_flight += 1
        return Lease(self, index)

    def _release(self, index: int) -> None:
        assert self._slots is not None
        self._busy[index] -= 1
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
        return fastjson.dumps(upstream)

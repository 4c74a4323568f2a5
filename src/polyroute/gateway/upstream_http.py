"""The HTTP client of upstream calls, behind one small interface: aiohttp (default) or httpx.

Why a seam: the gateway makes one upstream call per request, and the client library's own CPU
is a large share of a pinned request (``benchmarks/results/upstream_clients.md``: aiohttp spends
a fraction of httpx's CPU per call at concurrency 32). Forwarding, streaming and fallback only
need: post bytes, read the status and headers, iterate the body, close; and three kinds of
failure. Both libraries are put behind that, so forwarding never names either, and the choice
is one config value (``server.upstream_client``), with httpx kept for whoever needs it (an
environment without aiohttp's wheels, say).

Failures are this module's exceptions, raised on connect and while the body is read:
:class:`UpstreamTimeout`, :class:`UpstreamConnectError` and, for the rest (a reset connection,
a malformed response), :class:`UpstreamTransportError`.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol

#: Connections per pooled httpx client. httpcore's pool walks every connection (and polls each
#: idle one's socket) each time a request starts or ends, so one pool of 64 connections costs ~8x
#: a pool of 8 per request; a backend therefore holds several small pools.
HTTPX_POOL_SIZE = 8
#: Seconds an idle kept-alive upstream connection is kept.
KEEPALIVE_SECONDS = 30.0

ClientKind = Literal["aiohttp", "httpx"]


class UpstreamHTTPError(Exception):
    """An upstream call failed below HTTP: no status, or the body broke off."""


class UpstreamTimeout(UpstreamHTTPError):
    """Connecting, or waiting for the next bytes, took longer than the backend allows."""


class UpstreamConnectError(UpstreamHTTPError):
    """The backend could not be reached (refused, unreachable, name not found, TLS failed)."""


class UpstreamTransportError(UpstreamHTTPError):
    """The connection broke or the response was not valid HTTP."""


class UpstreamResponse(Protocol):
    """A response whose status and headers have arrived; the body is read with
    :meth:`aiter_bytes` (decoded: the size seen is what the client would get) and the
    connection is given back with :meth:`aclose` (always call it)."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    """One backend's pooled connections."""

    async def post(self, url: str, content: bytes, headers: Mapping[str, str]
                   ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


def open_client(kind: ClientKind, *, base_headers: Mapping[str, str], max_connections: int,
                timeout: float, connect_timeout: float,
                ssl_context: ssl.SSLContext | None = None) -> UpstreamClient:
    """A client of ``kind`` holding up to ``max_connections`` kept-alive connections; reads
    time out after ``timeout`` s without bytes, connecting after ``connect_timeout`` s. Call
    inside the event loop."""
    if kind == "aiohttp":
        return AiohttpClient(base_headers=base_headers, max_connections=max_connections,
                             timeout=timeout, connect_timeout=connect_timeout,
                             ssl_context=ssl_context)
    return HttpxClient(base_headers=base_headers, max_connections=max_connections,
                       timeout=timeout, connect_timeout=connect_timeout, ssl_context=ssl_context)


def default_ssl_context() -> ssl.SSLContext:
    """One context for every backend's client: loading the CA bundle costs ~15 ms apiece."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


# -- aiohttp -------------------------------------------------------------------------------------
class _AiohttpResponse:
    __slots__ = ("_response", "status_code", "headers")

    def __init__(self, response: Any) -> None:
        self._response = response
        self.status_code: int = response.status
        self.headers: Mapping[str, str] = response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:  # aiohttp's read timeouts are TimeoutErrors too
            raise UpstreamTimeout(f"no bytes within the read timeout ({exc})") from None
        except aiohttp.ClientError as exc:
            raise UpstreamTransportError(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()  # fully read: the connection goes back to the pool
        else:
            response.close()  # abandoned half-way: the connection cannot be reused


class AiohttpClient:
    """aiohttp's ``ClientSession``: one connection pool of ``max_connections``."""

    def __init__(self, *, base_headers: Mapping[str, str], max_connections: int, timeout: float,
                 connect_timeout: float, ssl_context: ssl.SSLContext | None) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0,
                                         keepalive_timeout=KEEPALIVE_SECONDS,
                                         ssl=ssl_context if ssl_context is not None else True)
        self._session = aiohttp.ClientSession(
            connector=connector, headers=dict(base_headers), trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                          sock_read=timeout),
            auto_decompress=True, raise_for_status=False)

    async def post(self, url: str, content: bytes, headers: Mapping[str, str]
                   ) -> UpstreamResponse:
        import aiohttp

        try:
            response = await self._session.post(url, data=content, headers=headers,
                                                allow_redirects=False)
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc) or "timed out") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(str(exc) or type(exc).__name__) from None
        except aiohttp.ClientError as exc:
            raise UpstreamTransportError(f"{type(exc).__name__}: {exc}") from None
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()


# -- httpx ---------------------------------------------------------------------------------------
def _httpx_failure(exc: Exception) -> UpstreamHTTPError:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(str(exc) or type(exc).__name__)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamConnectError(str(exc) or type(exc).__name__)
    return UpstreamTransportError(f"{type(exc).__name__}: {exc}")


class _HttpxResponse:
    __slots__ = ("_response", "_release", "status_code", "headers")

    def __init__(self, response: Any, release: Any) -> None:
        self._response = response
        self._release = release
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _httpx_failure(exc) from None

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            await self._response.aclose()
        finally:
            if release is not None:
                release()


class HttpxClient:
    """Several small ``httpx.AsyncClient`` pools (see :data:`HTTPX_POOL_SIZE`); each call
    takes the least busy one, which always has a free connection while the caller keeps at
    most ``max_connections`` calls open."""

    def __init__(self, *, base_headers: Mapping[str, str], max_connections: int, timeout: float,
                 connect_timeout: float, ssl_context: ssl.SSLContext | None) -> None:
        import httpx

        size = min(HTTPX_POOL_SIZE, max_connections)
        n_pools = -(-max_connections // size)
        self._pools = [httpx.AsyncClient(
            headers=dict(base_headers),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size,
                                keepalive_expiry=KEEPALIVE_SECONDS),
            follow_redirects=False, trust_env=False,
            verify=ssl_context if ssl_context is not None else True,
        ) for _ in range(n_pools)]
        self._busy = [0] * n_pools
        self._urls: dict[str, Any] = {}  # parsed once: httpx would parse each time

    async def post(self, url: str, content: bytes, headers: Mapping[str, str]
                   ) -> UpstreamResponse:
        import httpx

        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        pool = self._pools[index]
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        request = pool.build_request("POST", parsed, content=content, headers=headers)
        self._busy[index] += 1

        def release() -> None:
            self._busy[index] -= 1

        try:
            response = await pool.send(request, stream=True)
        except httpx.HTTPError as exc:
            release()
            raise _httpx_failure(exc) from None
        except BaseException:
            release()
            raise
        return _HttpxResponse(response, release)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
        self._pools, self._busy = [], []

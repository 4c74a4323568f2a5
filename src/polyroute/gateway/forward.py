"""Send a request to the first candidate that answers: fallback before the first byte.

The policy's ranked candidates are tried in order. A candidate is skipped while its circuit
breaker is open or when it has no free slot; a connection error, a timeout, a retryable status
(429, 5xx, and the gateway's own 401/403/404) or a malformed answer moves on to the next one. A
streamed answer is committed when its first chunk arrives — after that nothing can be retried,
because bytes have reached the client. Every try is appended to ``attempts`` as it happens, so the
record is complete even if the request is cancelled half-way.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from polyroute.gateway.backends import Backend, Lease, is_retryable
from polyroute.gateway.metrics import Metrics
from polyroute.store import Attempt

_MAX_ERROR_TEXT = 300


@dataclass
class Answer:
    """A complete (non-streamed) answer, or a client error relayed from the backend."""

    backend: Backend
    status: int
    content: bytes
    content_type: str
    usage: dict[str, Any] | None
    upstream_ms: float


@dataclass
class OpenStream:
    """A streamed answer whose first chunk has arrived; the caller must :meth:`close` it."""

    backend: Backend
    response: httpx.Response
    first: bytes
    chunks: AsyncIterator[bytes]
    content_type: str
    strip_usage: bool
    upstream_ms: float
    lease: Lease | None = None
    _closed: bool = False

    async def close(self, *, failed: bool = False) -> None:
        """Close the upstream response and free the backend's slot (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.response.aclose()
        finally:
            if self.lease is not None:
                self.lease.release()
            if failed:
                self.backend.breaker.record_failure()


class AllFailed(Exception):
    """No candidate produced an answer; ``status`` is 502, 503 (none could be tried) or 504."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class _Failure(Exception):
    def __init__(self, outcome: str, error: str, http_status: int | None = None) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error
        self.http_status = http_status


def _short(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[:_MAX_ERROR_TEXT] + "…"


async def forward(candidates: Sequence[Backend], body: dict[str, Any], *, stream: bool,
                  client_wants_usage: bool, request_id: str, attempts: list[Attempt],
                  metrics: Metrics) -> Answer | OpenStream:
    """Try ``candidates`` in order; raise :class:`AllFailed` if none answers."""
    last = len(candidates) - 1
    for i, backend in enumerate(candidates):
        if not backend.breaker.allow():
            attempts.append(Attempt(backend.name, "cooldown"))
            metrics.backend_outcome(backend.name, "cooldown", fallback=i < last)
            continue
        lease = await backend.acquire()
        if lease is None:
            backend.breaker.release()
            attempts.append(Attempt(backend.name, "saturated",
                                    error=f"all {backend.config.max_concurrency} slots busy"))
            metrics.backend_outcome(backend.name, "saturated", fallback=i < last)
            continue
        add_usage = stream and backend.config.stream_usage and not client_wants_usage
        content = backend.payload(body, stream=stream, add_usage=add_usage)
        started = time.perf_counter()
        handed_over = False
        verdict = False
        try:
            if stream:
                result: Answer | OpenStream = await _open_stream(backend, lease, content,
                                                                 request_id, add_usage, started)
            else:
                result = await _complete(backend, lease, content, request_id, started)
            elapsed = (time.perf_counter() - started) * 1000
            status = result.status if isinstance(result, Answer) else 200
            outcome = "ok" if status == 200 else "passthrough"
            attempts.append(Attempt(backend.name, outcome, status, None, elapsed))
            metrics.backend_outcome(backend.name, outcome, elapsed / 1000)
            backend.breaker.record_success()
            verdict = True
            handed_over = isinstance(result, OpenStream)
            return result
        except _Failure as exc:
            elapsed = (time.perf_counter() - started) * 1000
            attempts.append(Attempt(backend.name, exc.outcome, exc.http_status, exc.error,
                                    elapsed))
            metrics.backend_outcome(backend.name, exc.outcome, elapsed / 1000, fallback=i < last)
            backend.breaker.record_failure()
            verdict = True
        finally:
            if not handed_over:
                lease.release()
            if not verdict:  # cancelled: no verdict on the backend, free a probe it may hold
                backend.breaker.release()
    raise all_failed(candidates, attempts)


def all_failed(candidates: Sequence[Backend], attempts: list[Attempt]) -> AllFailed:
    tried = [a for a in attempts if a.outcome not in ("cooldown", "saturated")]
    summary = "; ".join(f"{a.backend}: {a.outcome}" + (f" ({a.error})" if a.error else "")
                        for a in attempts)
    if not tried:
        waits = [b.breaker.retry_after() for b in candidates if b.breaker.retry_after() > 0]
        return AllFailed(503, f"no candidate backend is available right now ({summary})",
                         retry_after=min(waits) if waits else None)
    if all(a.outcome == "timeout" for a in tried):
        return AllFailed(504, f"every candidate backend timed out ({summary})")
    return AllFailed(502, f"every candidate backend failed ({summary})")


def _classify(exc: BaseException, backend: Backend) -> _Failure:
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return _Failure("timeout", f"no answer within {backend.config.timeout:g} s")
    if isinstance(exc, httpx.ConnectError):
        return _Failure("connect_error", _short(str(exc) or type(exc).__name__))
    return _Failure("transport_error", _short(f"{type(exc).__name__}: {exc}"))


def _request(lease: Lease, content: bytes, request_id: str) -> httpx.Request:
    return lease.client.build_request("POST", lease.url, content=content,
                                      headers={"x-request-id": request_id})


async def _complete(backend: Backend, lease: Lease, content: bytes, request_id: str,
                    started: float) -> Answer:
    request = _request(lease, content, request_id)
    try:
        with anyio.fail_after(backend.config.timeout):
            response = await lease.client.send(request)
    except (httpx.TransportError, TimeoutError) as exc:
        raise _classify(exc, backend) from None
    status = response.status_code
    if is_retryable(status):
        raise _Failure(f"http_{status}", _short(response.content), status)
    ctype = response.headers.get("content-type", "application/json")
    usage = None
    if status == 200:
        try:
            parsed = json.loads(response.content)
        except ValueError:
            raise _Failure("bad_response", "the answer is not JSON", status) from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
            raise _Failure("bad_response", "the answer has no 'choices' list", status)
        usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else None
    return Answer(backend, status, response.content, ctype, usage,
                  (time.perf_counter() - started) * 1000)


async def _open_stream(backend: Backend, lease: Lease, content: bytes, request_id: str,
                       strip_usage: bool, started: float) -> Answer | OpenStream:
    request = _request(lease, content, request_id)
    response: httpx.Response | None = None
    committed = False
    try:
        with anyio.fail_after(backend.config.timeout):
            response = await lease.client.send(request, stream=True)
            status = response.status_code
            if status != 200:
                body = await response.aread()
                if is_retryable(status):
                    raise _Failure(f"http_{status}", _short(body), status)
                return Answer(backend, status, body,
                              response.headers.get("content-type", "application/json"), None,
                              (time.perf_counter() - started) * 1000)
            chunks = response.aiter_raw()
            first = b""
            async for chunk in chunks:
                if chunk:
                    first = chunk
                    break
            if not first:
                raise _Failure("bad_response", "the stream ended before any data", status)
        committed = True
        return OpenStream(backend, response, first, chunks,
                          response.headers.get("content-type", "text/event-stream"),
                          strip_usage, (time.perf_counter() - started) * 1000, lease)
    except (httpx.TransportError, TimeoutError) as exc:
        raise _classify(exc, backend) from None
    finally:
        if response is not None and not committed:
            with anyio.CancelScope(shield=True):
                await response.aclose()

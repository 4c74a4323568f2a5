"""Send a request to the first candidate that answers: fallback before the first byte.

The policy's ranked candidates are tried in order. A candidate is skipped while its circuit
breaker is open or when it has no free slot; a connection error, a timeout, a retryable status
(429, 5xx, a redirect, and the gateway's own 401/403/404), an answer that is not a chat completion
or is larger than ``max_answer_bytes`` moves on to the next one. A streamed answer is committed
when its first complete, valid event arrives — after that nothing can be retried, because bytes
have reached the client; a stream that is garbage or ends before that falls back like any failure.
A committed stream's verdict on the backend's breaker is given when it ends
(:meth:`OpenStream.close`). Every try is appended to ``attempts`` as it happens, so the record is
complete even if the request is cancelled half-way.

What reaches the client about a failed backend is its name, the outcome and a generic reason
(:data:`REASONS`), never the upstream body: backends echo keys and internals. The excerpt kept in
``attempts.error`` for operators has credentials removed (:func:`~polyroute.gateway.redact.redact`).

A backend that speaks another API than Chat Completions translates through its dialect
(:mod:`~polyroute.gateway.upstream`): the request body, a complete answer, a relayed error and the
stream's judge. A request its API cannot express is an ``unsupported`` attempt (next candidate);
an answer the translation cannot read is a ``bad_response`` like any other.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from polyroute.gateway import fastjson
from polyroute.gateway.backends import Backend, Lease, is_retryable
from polyroute.gateway.metrics import Metrics
from polyroute.gateway.redact import redact, scrub_keys
from polyroute.gateway.upstream import StreamRelay, UpstreamFormatError, UpstreamUnsupported
from polyroute.gateway.upstream_http import (
    UpstreamConnectError,
    UpstreamHTTPError,
    UpstreamResponse,
    UpstreamTimeout,
)
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
    """A streamed answer whose first valid event has arrived; the caller must :meth:`close` it.

    ``first`` holds the bytes to send first (the judged events read before committing);
    ``relay`` is the judge (an :class:`~polyroute.gateway.sse.SSERelay`, or the backend dialect's
    translating one) that cut them, to go on with for ``chunks``.
    """

    backend: Backend
    response: UpstreamResponse
    first: bytes
    chunks: AsyncIterator[bytes]
    content_type: str
    relay: StreamRelay
    upstream_ms: float
    lease: Lease | None = None
    _closed: bool = False

    async def close(self, *, failed: bool = False, completed: bool = False) -> None:
        """Close the upstream response, free the backend's slot and give the breaker its
        verdict: a failure if ``failed``, a success if ``completed``, else none (the client
        left: the stream proved nothing either way). Idempotent."""
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
            elif completed:
                self.backend.breaker.record_success()
            else:
                self.backend.breaker.release()


class AllFailed(Exception):
    """No candidate produced an answer; ``status`` is 502, 503 (none could be tried), 504, or
    400 (the request uses what no candidate's API can express)."""

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


#: What a client is told about a failed or skipped candidate, by outcome (``http_*`` by class).
REASONS = {
    "timeout": "timed out", "connect_error": "connection refused or unreachable",
    "transport_error": "connection failed", "bad_response": "bad response",
    "too_large": "answer too large", "cooldown": "cooling down after failures",
    "saturated": "all slots busy", "http_401": "unauthorized (the gateway's key for it)",
    "http_403": "unauthorized (the gateway's key for it)",
    "http_404": "not found (its model or base_url)", "http_408": "timed out",
    "http_429": "rate-limited",
    "unsupported": "its API cannot express this request",
}


def reason(outcome: str) -> str:
    """The generic, client-safe reason for an attempt's ``outcome``."""
    if outcome in REASONS:
        return REASONS[outcome]
    if outcome.startswith("http_3"):
        return "redirected (check its base_url)"
    if outcome.startswith("http_5"):
        return "upstream server error"
    return "failed"


async def forward(candidates: Sequence[Backend], body: dict[str, Any], *, stream: bool,
                  client_wants_usage: bool, request_id: str, attempts: list[Attempt],
                  metrics: Metrics) -> Answer | OpenStream:
    """Try ``candidates`` in order; raise :class:`AllFailed` if none answers."""
    last = len(candidates) - 1
    secrets = [b.api_key for b in candidates]
    for i, backend in enumerate(candidates):
        add_usage = stream and backend.config.stream_usage and not client_wants_usage
        try:
            content = backend.payload(body, stream=stream, add_usage=add_usage)
        except UpstreamUnsupported as exc:  # the request's doing: no verdict on the backend
            attempts.append(Attempt(backend.name, "unsupported", error=str(exc)))
            metrics.backend_outcome(backend.name, "unsupported", fallback=i < last)
            continue
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
        started = time.perf_counter()
        handed_over = False
        verdict = False
        try:
            if stream:
                result: Answer | OpenStream = await _open_stream(
                    backend, lease, content, request_id, add_usage, client_wants_usage, started)
            else:
                result = await _complete(backend, lease, content, request_id, started)
            elapsed = (time.perf_counter() - started) * 1000
            status = result.status if isinstance(result, Answer) else 200
            outcome = "ok" if status == 200 else "passthrough"
            attempts.append(Attempt(backend.name, outcome, status, None, elapsed))
            metrics.backend_outcome(backend.name, outcome, elapsed / 1000)
            verdict = True
            if isinstance(result, OpenStream):  # its verdict comes when it ends (close)
                handed_over = True
            else:
                backend.breaker.record_success()
                if status != 200:  # a relayed client error must not echo the key back
                    result.content = scrub_keys(result.content, secrets)
            return result
        except _Failure as exc:
            elapsed = (time.perf_counter() - started) * 1000
            attempts.append(Attempt(backend.name, exc.outcome, exc.http_status,
                                    redact(exc.error, secrets), elapsed))
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
    summary = "; ".join(f"{a.backend}: {a.outcome} ({reason(a.outcome)})" for a in attempts)
    if attempts and all(a.outcome == "unsupported" for a in attempts):
        return AllFailed(400, f"no candidate backend's API can express this request "
                              f"({summary}): {attempts[0].error}")
    if not tried:
        waits = [b.breaker.retry_after() for b in candidates if b.breaker.retry_after() > 0]
        return AllFailed(503, f"no candidate backend is available right now ({summary})",
                         retry_after=min(waits) if waits else None)
    if all(a.outcome == "timeout" for a in tried):
        return AllFailed(504, f"every candidate backend timed out ({summary})")
    return AllFailed(502, f"every candidate backend failed ({summary})")


def _classify(exc: BaseException, backend: Backend) -> _Failure:
    if isinstance(exc, (UpstreamTimeout, TimeoutError)):
        return _Failure("timeout", f"no answer within {backend.config.timeout:g} s")
    if isinstance(exc, UpstreamConnectError):
        return _Failure("connect_error", _short(str(exc) or type(exc).__name__))
    return _Failure("transport_error", _short(str(exc) or type(exc).__name__))


async def _send(lease: Lease, content: bytes, request_id: str) -> UpstreamResponse:
    return await lease.client.post(lease.url, content, {"x-request-id": request_id})


async def _read_capped(response: UpstreamResponse, cap: int) -> bytes:
    """The whole (decoded) body, or a ``too_large`` failure as soon as it passes ``cap``."""
    parts, size = [], 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > cap:
            raise _Failure("too_large", f"the answer exceeds max_answer_bytes ({cap} bytes)",
                           response.status_code)
        parts.append(part)
    return b"".join(parts)


def _refused(status: int, body: bytes) -> _Failure:
    """A status that means "try the next candidate"; a redirect's body is of no interest."""
    if 300 <= status < 400:
        return _Failure(f"http_{status}", "redirected: base_url must name the API itself",
                        status)
    return _Failure(f"http_{status}", _short(body), status)


async def _complete(backend: Backend, lease: Lease, content: bytes, request_id: str,
                    started: float) -> Answer:
    response: UpstreamResponse | None = None
    try:
        with anyio.fail_after(backend.config.timeout):
            response = await _send(lease, content, request_id)
            body = await _read_capped(response, backend.config.max_answer_bytes)
    except (UpstreamHTTPError, TimeoutError) as exc:
        raise _classify(exc, backend) from None
    finally:
        if response is not None:
            with anyio.CancelScope(shield=True):
                await response.aclose()
    status = response.status_code
    if is_retryable(status):
        raise _refused(status, body)
    ctype = response.headers.get("content-type", "application/json")
    usage = None
    if status != 200:
        body = backend.dialect.error(body)
    else:
        try:
            body = backend.dialect.answer(body)
        except UpstreamFormatError as exc:
            raise _Failure("bad_response", str(exc), status) from None
        try:
            parsed = fastjson.loads(body)
        except ValueError:
            raise _Failure("bad_response", "the answer is not JSON", status) from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
            raise _Failure("bad_response", "the answer has no list 'choices'", status)
        usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else None
    return Answer(backend, status, body, ctype, usage, (time.perf_counter() - started) * 1000)


async def _open_stream(backend: Backend, lease: Lease, content: bytes, request_id: str,
                       strip_usage: bool, client_wants_usage: bool,
                       started: float) -> Answer | OpenStream:
    response: UpstreamResponse | None = None
    committed = False
    try:
        with anyio.fail_after(backend.config.timeout):
            response = await _send(lease, content, request_id)
            status = response.status_code
            if status != 200:
                body = await _read_capped(response, backend.config.max_answer_bytes)
                if is_retryable(status):
                    raise _refused(status, body)
                return Answer(backend, status, backend.dialect.error(body),
                              response.headers.get("content-type", "application/json"), None,
                              (time.perf_counter() - started) * 1000)
            relay = backend.dialect.relay(strip_usage=strip_usage,
                                          include_usage=client_wants_usage,
                                          max_event_bytes=backend.config.max_event_bytes)
            chunks = response.aiter_bytes()
            first = await _first_event(relay, chunks, status)
        committed = True
        return OpenStream(backend, response, first, chunks,
                          response.headers.get("content-type", "text/event-stream"),
                          relay, (time.perf_counter() - started) * 1000, lease)
    except (UpstreamHTTPError, TimeoutError) as exc:
        raise _classify(exc, backend) from None
    finally:
        if response is not None and not committed:
            with anyio.CancelScope(shield=True):
                await response.aclose()


async def _first_event(relay: StreamRelay, chunks: AsyncIterator[bytes], status: int) -> bytes:
    """Read until the first complete, valid data event (or the stream's end); the bytes to send.

    Why not commit on the first chunk: a chunk may be a comment, half an event or garbage, and
    once anything is sent the request can no longer fall back. A stream that ends here must be
    complete to be an answer (a short one may fit in one chunk).
    """
    first = b""
    async for chunk in chunks:
        first += relay.feed(chunk)
        if relay.error is not None:
            raise _Failure("bad_response", f"the stream is malformed: {relay.error}", status)
        if relay.events:
            return first
    first += relay.finish()
    if relay.error is not None:
        raise _Failure("bad_response", f"the stream is malformed: {relay.error}", status)
    if not relay.events:
        raise _Failure("bad_response", "the stream ended before any data", status)
    if not relay.completed:
        raise _Failure("bad_response", "the stream ended before it was complete", status)
    return first

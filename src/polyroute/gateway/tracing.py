"""OpenTelemetry traces of each request: its stages, its decision and every backend try.

Why the spans are made from the finished record rather than around the code: the record is the
one complete account of a request (``Recorder.finish`` runs exactly once, however the request
ends — streams included, when their last byte has gone), so a trace can never disagree with the
log; and the request path pays nothing for tracing but two clock reads per stage. Spans carry
their real start and end times, so the trace looks as if it had been made live.

Names and attributes follow OpenTelemetry's GenAI semantic conventions: the request's span is
``chat {requested model}`` (``gen_ai.operation.name`` = ``chat``, the requested and response
models, input and output tokens), each try of a backend a CLIENT span ``chat {upstream model}``
with ``gen_ai.provider.name``, ``server.address`` and ``error.type`` when it failed. What is
polyroute's own (profile, policy, candidates, cost, stage) is under ``polyroute.*``.

A try's start is not recorded, only its duration; tries run one after another inside the serve
stage, so each span starts where the previous try ended (a skipped backend — breaker open, no
free slot — is an instant span).

Exported over OTLP/HTTP when ``telemetry.otlp_endpoint`` is set (the ``otel`` extra installs the
exporter), to the console with ``telemetry.console``; off otherwise, and then nothing is built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from polyroute.errors import ConfigError
from polyroute.store import OK, RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from polyroute.config import GatewayConfig, TelemetryConfig

logger = logging.getLogger(__name__)

#: (stage name, start, end) in nanoseconds since the epoch, as ``run_pipeline`` measures them.
StageTimes = list[tuple[str, int, int]]


class RequestTracer:
    """Turns finished request records into spans; one per gateway."""

    def __init__(self, provider: TracerProvider, backends: dict[str, tuple[str, str]]) -> None:
        #: backend name → (upstream model id, server address)
        self._backends = backends
        self._provider = provider
        self._tracer = provider.get_tracer("polyroute.gateway")

    @classmethod
    def from_config(cls, config: GatewayConfig,
                    exporter: SpanExporter | None = None) -> RequestTracer | None:
        """The tracer ``config.telemetry`` asks for (None when tracing is off); ``exporter``
        replaces the configured one (tests keep spans in memory)."""
        telemetry = config.telemetry
        if exporter is None and telemetry.otlp_endpoint is None and not telemetry.console:
            return None
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
            from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
        except ImportError:
            raise ConfigError("telemetry: tracing needs OpenTelemetry; install it with "
                              "`pip install 'polyroute[otel]'`") from None
        provider = TracerProvider(resource=Resource.create({"service.name":
                                                            telemetry.service_name}),
                                  sampler=TraceIdRatioBased(telemetry.sample_ratio))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            for made in _exporters(telemetry):
                # Batched, on the SDK's own thread: an export never waits on the request path.
                provider.add_span_processor(BatchSpanProcessor(made))
        backends = {b.name: (b.upstream_model, urlsplit(b.base_url).hostname or "")
                    for b in config.backends}
        return cls(provider, backends)

    def record(self, record: RequestRecord, stages: StageTimes,
               extra: dict[str, Any] | None = None) -> None:
        """Emit the spans of one finished request. Never raises: tracing must not fail a
        request whose record is already written."""
        try:
            self._record(record, stages, extra or {})
        except Exception:  # a bug here is logged, the request is unaffected
            logger.exception("could not trace request %s", record.id)

    def _record(self, record: RequestRecord, stages: StageTimes, extra: dict[str, Any]) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start = int(record.ts * 1e9)
        end = start + int((record.latency_ms or 0.0) * 1e6)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "polyroute.request_id": record.id,
            "polyroute.status": record.status,
            "http.response.status_code": record.http_status,
            "polyroute.stream": record.stream,
            "polyroute.cost_usd": record.cost,
            "polyroute.fallbacks": record.fallbacks,
        }
        _put(attrs, "gen_ai.request.model", record.requested_model)
        _put(attrs, "gen_ai.response.model", record.chosen)
        _put(attrs, "gen_ai.usage.input_tokens", record.prompt_tokens)
        _put(attrs, "gen_ai.usage.output_tokens", record.completion_tokens)
        _put(attrs, "polyroute.profile", record.profile)
        _put(attrs, "polyroute.policy", record.policy)
        _put(attrs, "polyroute.rule", record.rule)
        _put(attrs, "polyroute.named_route", record.named_route)
        _put(attrs, "polyroute.decision_ms", record.decision_ms)
        _put(attrs, "polyroute.key_id", record.key_id)
        for k, v in extra.items():
            _put(attrs, f"polyroute.{k}", v)
        if record.status != OK:
            attrs["error.type"] = record.status
        root = self._tracer.start_span(f"chat {record.requested_model or ''}".strip(),
                                       kind=SpanKind.SERVER, start_time=start, attributes=attrs)
        if record.status != OK:
            root.set_status(Status(StatusCode.ERROR, record.error or record.status))
        context = trace.set_span_in_context(root)
        serve_start = None
        for name, s, e in stages:
            stage_attrs: dict[str, Any] = {"polyroute.stage": name}
            if name == "decide" and record.candidates:
                stage_attrs["polyroute.candidates"] = [c.model for c in record.candidates]
                stage_attrs["polyroute.estimated_quality"] = [
                    -1.0 if c.estimated_quality is None else float(c.estimated_quality)
                    for c in record.candidates]
            span = self._tracer.start_span(f"polyroute.{name}", context=context, start_time=s,
                                           attributes=stage_attrs)
            span.end(end_time=e)
            if name == "serve":
                serve_start = s
        last = self._attempts(record.attempts,
                              serve_start if serve_start is not None else start, context)
        # The record's latency is on the monotonic clock, span times on the wall clock: the
        # request's span ends no earlier than its last child.
        root.end(end_time=max([end, start, last, *(e for _, _, e in stages)]))

    def _attempts(self, attempts: Sequence[Any], at: int, context: Any) -> int:
        """One CLIENT span per try, laid end to end from ``at``; returns the last one's end."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        for attempt in attempts:
            upstream, host = self._backends.get(attempt.backend, (attempt.backend, ""))
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": upstream,
                "polyroute.backend": attempt.backend,
                "polyroute.attempt.outcome": attempt.outcome,
            }
            _put(attrs, "server.address", host or None)
            _put(attrs, "http.response.status_code", attempt.http_status)
            failed = attempt.outcome not in ("ok", "passthrough")
            if failed:
                attrs["error.type"] = attempt.outcome
            span = self._tracer.start_span(f"chat {upstream}", kind=SpanKind.CLIENT,
                                           context=context, start_time=at, attributes=attrs)
            if failed:
                span.set_status(Status(StatusCode.ERROR, attempt.outcome))
            at += int((attempt.latency_ms or 0.0) * 1e6)
            span.end(end_time=at)
        return at

    def shutdown(self) -> None:
        """Export what is buffered, then stop (at gateway shutdown)."""
        self._provider.shutdown()


def _put(attrs: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        attrs[name] = value


def _exporters(telemetry: TelemetryConfig) -> list[SpanExporter]:
    out: list[SpanExporter] = []
    if telemetry.otlp_endpoint is not None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError("telemetry.otlp_endpoint: the OTLP exporter is not installed; "
                              "install it with `pip install 'polyroute[otel]'`") from None
        # Credentials for the collector come from OTEL_EXPORTER_OTLP_HEADERS (the exporter reads
        # it), never from the config file.
        out.append(OTLPSpanExporter(endpoint=telemetry.otlp_endpoint))
    if telemetry.console:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        out.append(ConsoleSpanExporter())
    return out

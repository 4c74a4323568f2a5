"""OpenTelemetry traces: each request's span tree matches its record (stages, decision, tries)."""

from __future__ import annotations

import pytest
from gateway_world import KEY, MATH_PROMPT, wait_for

from polyroute.config import validate_config
from polyroute.errors import ConfigError
from polyroute.gateway.tracing import RequestTracer

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402


@pytest.fixture
def traced(gateway_factory):
    gw = gateway_factory()
    exporter = InMemorySpanExporter()
    gw.gateway.tracer = RequestTracer.from_config(gw.config, exporter=exporter)
    return gw, exporter


def _tree(exporter, request_id):
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.attributes.get("polyroute.request_id") == request_id]
    children = [s for s in spans if s.parent is not None
                and s.parent.span_id == root.context.span_id]
    return root, children


def test_a_fallback_request_is_one_tree_of_stages_and_tries(traced, standins):
    gw, exporter = traced
    standins["alpha"].mode = "500"
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200
    gw.flush()
    rec = gw.gateway.store.get_request(r.headers["x-polyroute-request-id"])
    root, children = _tree(exporter, rec.id)
    assert root.name == "chat polyroute-auto" and root.kind == SpanKind.SERVER
    assert root.attributes["gen_ai.operation.name"] == "chat"
    assert root.attributes["gen_ai.response.model"] == rec.chosen
    assert root.attributes["gen_ai.usage.output_tokens"] == rec.completion_tokens
    assert root.attributes["polyroute.fallbacks"] == 1
    assert root.status.status_code != StatusCode.ERROR
    stages = [s.attributes["polyroute.stage"] for s in children if s.kind == SpanKind.INTERNAL]
    assert stages == [name for name, _ in gw.gateway.stages]
    (decide,) = [s for s in children if s.name == "polyroute.decide"]
    assert list(decide.attributes["polyroute.candidates"]) == [c.model for c in rec.candidates]
    tries = sorted((s for s in children if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time)
    assert [s.attributes["polyroute.backend"] for s in tries] == [a.backend for a in rec.attempts]
    assert tries[0].name == "chat upstream-alpha"
    assert tries[0].attributes["error.type"] == "http_500"
    assert tries[0].status.status_code == StatusCode.ERROR
    assert tries[0].attributes["server.address"] == "127.0.0.1"
    assert "error.type" not in tries[1].attributes
    # Times nest: every child inside the request's span, tries one after another.
    for s in children:
        assert root.start_time <= s.start_time <= s.end_time <= root.end_time
    assert tries[0].end_time <= tries[1].start_time


def test_a_refused_request_is_traced_as_an_error(traced):
    gw, exporter = traced
    with gw.client() as c:
        r = c.post("/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                   json={"model": "no-such-model", "messages": [{"role": "user",
                                                                 "content": "hi"}]})
    assert r.status_code == 400
    gw.flush()
    root, children = _tree(exporter, r.headers["x-polyroute-request-id"])
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes["error.type"] == "error"
    assert root.attributes["http.response.status_code"] == 400
    assert [s.name for s in children] == ["polyroute.admit", "polyroute.parse"]


def test_a_stream_is_traced_when_it_ends(traced):
    gw, exporter = traced
    with gw.client() as c, c.stream(
            "POST", "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
            json={"model": "polyroute-auto", "stream": True,
                  "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        b"".join(r.iter_raw())
    rid = r.headers["x-polyroute-request-id"]
    wait_for(lambda: any(s.attributes.get("polyroute.request_id") == rid
                         for s in exporter.get_finished_spans()), "the stream's span")
    root, _ = _tree(exporter, rid)
    assert root.attributes["polyroute.stream"] is True
    assert root.attributes["polyroute.status"] == "ok"


def test_tracing_is_off_unless_an_exporter_is_configured(gateway):
    assert gateway.gateway.tracer is None


def test_telemetry_config_is_checked(gateway):
    raw = gateway.config.model_dump(mode="json", exclude_none=True)
    with pytest.raises(ConfigError, match="http"):
        validate_config({**raw, "telemetry": {"otlp_endpoint": "collector:4318"}})
    config = validate_config({**raw, "telemetry": {"otlp_endpoint":
                                                   "http://127.0.0.1:9/v1/traces"}})
    tracer = RequestTracer.from_config(config)  # the exporter is installed here
    assert tracer is not None
    tracer.shutdown()

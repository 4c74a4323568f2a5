"""What does speaking Anthropic's Messages API upstream cost per request, against Chat Completions?

Two measurements in one run, on the bundled llmrouter-bench prompts (a system prompt plus each
prompt as the user turn):

* **translation alone** (in-process): per request, the dialect's work — build the upstream body,
  read a complete answer, and judge a 10-event stream — for ``openai`` (the identity: the body
  re-serialised with the backend's model id, the stream judged by ``SSERelay``) and for
  ``anthropic`` (Messages request, Messages answer → chat completion, Anthropic events →
  ``chat.completion.chunk`` events). The answer is the prompt's text, so lengths are real.
* **end to end** (loopback, concurrency 1): the same prompts sent, interleaved in a rotating
  order, to an OpenAI-compatible stand-in and an Anthropic stand-in directly, and through the
  gateway naming a backend that points at each (no routing); the added latency is gateway −
  direct per dialect, and the translation overhead is the difference of the two added latencies.
  The stand-ins, the gateway (uvicorn threads) and the client share one process and the
  machine, which inflates every number alike; the difference is what to read.

Usage::

    python benchmarks/upstream_translation.py            # ~1-2 min
    python benchmarks/upstream_translation.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, load_benchmark_data, machine, write_json  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "gateway"))
SYSTEM = "You are a careful assistant. Answer the question; be concise."
KEY = "pr-bench-upstream-key"


def bodies(n: int) -> list[dict[str, Any]]:
    prompts = list(load_benchmark_data().prompts)[:n]
    return [{"model": "x", "messages": [{"role": "system", "content": SYSTEM},
                                        {"role": "user", "content": p}], "max_tokens": 512}
            for p in prompts]


# -- translation alone ---------------------------------------------------------------------------
def _openai_answer(text: str) -> bytes:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                       "model": "m", "choices": [{"index": 0, "message": {
                           "role": "assistant", "content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 20,
                                 "total_tokens": 30}}).encode()


def _openai_stream(text: str, n: int = 10) -> bytes:
    size = -(-len(text) // n)
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": text[i:i + size]},
                             "finish_reason": None}]} for i in range(0, len(text), size)]
    events += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
               {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 20}}]
    return b"".join(b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk",
                                            **e}).encode() + b"\n\n" for e in events) \
        + b"data: [DONE]\n\n"


def _anthropic_answer(text: str) -> bytes:
    return json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                       "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                       "stop_sequence": None,
                       "usage": {"input_tokens": 10, "output_tokens": 20}}).encode()


def _anthropic_stream(text: str, n: int = 10) -> bytes:
    size = -(-len(text) // n)
    events = [{"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
        "stop_reason": None, "usage": {"input_tokens": 10, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text",
                                                                      "text": ""}}]
    events += [{"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text[i:i + size]}}
               for i in range(0, len(text), size)]
    events += [{"type": "content_block_stop", "index": 0},
               {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 20}}, {"type": "message_stop"}]
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def translation_alone(samples: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    from polyroute.config import BackendConfig
    from polyroute.gateway.upstream import dialect_for

    prices = {"input_price_per_mtok": 1.0, "output_price_per_mtok": 1.0}
    dialects = {
        "openai": (dialect_for(BackendConfig(name="o", base_url="http://h/v1", **prices)),
                   _openai_answer, _openai_stream),
        "anthropic": (dialect_for(BackendConfig(name="a", base_url="http://h",
                                                dialect="anthropic", **prices)),
                      _anthropic_answer, _anthropic_stream),
    }
    out: dict[str, Any] = {}
    for name, (dialect, answer, stream) in dialects.items():
        inputs = [(b, answer(b["messages"][1]["content"]), stream(b["messages"][1]["content"]))
                  for b in samples]
        times: dict[str, list[float]] = {"request": [], "answer": [], "stream": []}
        for _ in range(repeats):
            for body, content, events in inputs:
                t0 = time.perf_counter_ns()
                dialect.payload(body, model="m", stream=False, add_usage=False)
                t1 = time.perf_counter_ns()
                json.loads(dialect.answer(content))  # forward parses what the dialect returns
                t2 = time.perf_counter_ns()
                relay = dialect.relay(strip_usage=True, include_usage=True,
                                      max_event_bytes=4_000_000)
                for i in range(0, len(events), 512):
                    relay.feed(events[i:i + 512])
                relay.finish()
                t3 = time.perf_counter_ns()
                assert relay.completed
                times["request"].append((t1 - t0) / 1000)
                times["answer"].append((t2 - t1) / 1000)
                times["stream"].append((t3 - t2) / 1000)
        out[name] = {k: {"p50_us": float(np.percentile(v, 50)),
                         "p95_us": float(np.percentile(v, 95))} for k, v in times.items()}
    return out


# -- end to end ----------------------------------------------------------------------------------
def end_to_end(samples: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    from anthropic_standin import ANTHROPIC_KEY, AnthropicStandIn
    from gateway_world import make_outcomes
    from standin import ServerThread, StandIn

    from polyroute import Pipeline
    from polyroute.config import validate_config
    from polyroute.gateway import create_app, hash_key
    from polyroute.gateway.server import uvicorn_config

    reply = "x" * 400
    openai_app = StandIn("plain", chunks=10, reply=reply, record=False)
    claude_app = AnthropicStandIn("claude", chunks=10, reply=reply)
    with tempfile.TemporaryDirectory() as tmp, ServerThread(openai_app) as plain, \
            ServerThread(claude_app) as claude:
        Pipeline("knn", featurizer="tfidf", cache=False).fit(make_outcomes()).save(
            Path(tmp) / "router")
        prices = {"input_price_per_mtok": 1.0, "output_price_per_mtok": 1.0, "timeout": 30}
        config = validate_config({
            "backends": [{"name": "plain", "base_url": f"{plain.url}/v1", **prices},
                         {"name": "claude", "base_url": claude.url, "dialect": "anthropic",
                          "api_key_env": "ANTHROPIC_API_KEY", **prices}],
            "router": {"path": str(Path(tmp) / "router")},
            "keys": [{"id": "bench", "sha256": hash_key(KEY)}],
            "store": {"path": str(Path(tmp) / "store.sqlite"), "record_prompts": False}})
        app = create_app(config, env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
        with ServerThread(app, uvicorn_config(app, config, log_level="warning")) as gw:
            targets = {
                "openai direct": (f"{plain.url}/v1/chat/completions", {}, None),
                "openai via gateway": (f"{gw.url}/v1/chat/completions",
                                       {"authorization": f"Bearer {KEY}"}, "plain"),
                "anthropic direct": (f"{claude.url}/v1/messages",
                                     {"x-api-key": ANTHROPIC_KEY,
                                      "anthropic-version": "2023-06-01"}, None),
                "anthropic via gateway": (f"{gw.url}/v1/chat/completions",
                                          {"authorization": f"Bearer {KEY}"}, "claude"),
            }
            results: dict[str, Any] = {}
            # No Nagle on the client's side either: a small request would wait for a delayed ACK.
            transport = httpx.HTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            with httpx.Client(timeout=30, transport=transport) as client:
                for stream in (False, True):
                    times: dict[str, list[float]] = {t: [] for t in targets}
                    names = list(targets)
                    for r in range(rounds + 1):  # round 0 warms connections up, not counted
                        for j, body in enumerate(samples):
                            # Rotated per prompt, so that no target always follows another
                            # (a gateway request right after another shares the machine with
                            # the store writer committing the previous record).
                            for target in names[j % 4:] + names[:j % 4]:
                                url, headers, backend = targets[target]
                                sent = _body_for(target, body, backend, stream)
                                t0 = time.perf_counter()
                                with client.stream("POST", url, json=sent,
                                                   headers=headers) as response:
                                    data = response.read()
                                elapsed = (time.perf_counter() - t0) * 1000
                                if response.status_code != 200 or (
                                        stream and b"_stop" not in data and b"[DONE]" not in data):
                                    raise RuntimeError(f"{target}: {response.status_code} "
                                                       f"{data[:200]!r}")
                                if r:
                                    times[target].append(elapsed)
                    p50 = {t: statistics.median(v) for t, v in times.items()}
                    added_openai = p50["openai via gateway"] - p50["openai direct"]
                    added_anthropic = p50["anthropic via gateway"] - p50["anthropic direct"]
                    results["stream" if stream else "complete"] = {
                        "p50_ms": p50, "requests_each": len(times["openai direct"]),
                        "gateway_added_p50_ms": {"openai": added_openai,
                                                 "anthropic": added_anthropic},
                        "translation_overhead_p50_ms": added_anthropic - added_openai}
    return results


def _body_for(target: str, body: dict[str, Any], backend: str | None,
              stream: bool) -> dict[str, Any]:
    if target == "anthropic direct":  # what the gateway would send, sent by hand
        from polyroute.config import AnthropicConfig
        from polyroute.gateway.upstream.anthropic_request import to_messages_request
        return to_messages_request(body, model="claude", stream=stream,
                                   settings=AnthropicConfig())
    return {**body, "model": backend or "plain", "stream": stream}


def report(data: dict[str, Any]) -> str:
    lines = ["# Upstream dialects: translation overhead (anthropic vs openai)", "",
             f"Machine: {data['machine']['cpus']} CPUs, load average "
             f"{data['machine']['load_average_1min_at_start']:.1f} at start (shared with other "
             f"jobs), commit {data['machine']['commit']}. Prompts: the first "
             f"{data['prompts']} of the bundled llmrouter-bench data, with a system prompt.", "",
             "## Translation alone (in-process, per request, µs)", "",
             "| step | openai p50 | anthropic p50 | openai p95 | anthropic p95 |",
             "|---|---|---|---|---|"]
    alone = data["translation_alone"]
    for step in ("request", "answer", "stream"):
        o, a = alone["openai"][step], alone["anthropic"][step]
        lines.append(f"| {step} | {o['p50_us']:.1f} | {a['p50_us']:.1f} | {o['p95_us']:.1f} | "
                     f"{a['p95_us']:.1f} |")
    lines += ["", "`request`: build the upstream body; `answer`: read a complete answer into "
              "chat-completion bytes and parse them (as forward does); `stream`: judge (and, "
              "for anthropic, translate) a 10-delta stream.", "",
              "## End to end (loopback, concurrency 1, p50 ms)", "",
              "| mode | openai direct | openai via gateway | anthropic direct | "
              "anthropic via gateway | added: openai | added: anthropic | translation overhead |",
              "|---|---|---|---|---|---|---|---|"]
    for mode, r in data["end_to_end"].items():
        p = r["p50_ms"]
        lines.append(f"| {mode} ({r['requests_each']} each) | {p['openai direct']:.2f} | "
                     f"{p['openai via gateway']:.2f} | {p['anthropic direct']:.2f} | "
                     f"{p['anthropic via gateway']:.2f} | "
                     f"{r['gateway_added_p50_ms']['openai']:.2f} | "
                     f"{r['gateway_added_p50_ms']['anthropic']:.2f} | "
                     f"{r['translation_overhead_p50_ms']:+.2f} |")
    lines += ["", "Added = via gateway − direct for the same stand-in; translation overhead = "
              "added (anthropic) − added (openai). Stand-ins, gateway and client share one "
              "process and a loaded machine: absolute numbers are inflated alike; read the "
              "difference, and its size against the noise between the two direct columns.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, repeats, rounds = (30, 3, 1) if args.quick else (200, 10, 2)
    samples = bodies(n)
    data = {"machine": machine(), "prompts": len(samples),
            "translation_alone": translation_alone(samples, repeats),
            "end_to_end": end_to_end(samples[:100] if not args.quick else samples, rounds)}
    name = "upstream_translation" + ("_quick" if args.quick else "")
    write_json(f"{name}.json", data)
    (RESULTS / f"{name}.md").write_text(report(data))
    print(report(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

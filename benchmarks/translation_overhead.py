"""What does speaking Anthropic Messages or OpenAI Responses cost per request, against plain
Chat Completions through the same gateway?

One process, loopback only, bounded, stops by itself. It starts the stand-in OpenAI-compatible
backend (tests/gateway/standin.py: answers at once, streams 5 content chunks) and one gateway in
front of it, routing with a kNN router on TF-IDF features of the bundled data (trained here; the
routing work is the same for every API). The same seeded bundled prompts are sent, one at a time
(concurrency 1), to ``/v1/chat/completions``, ``/v1/messages``, ``/v1/responses`` and
``/v1/responses`` with ``store: false``, non-streamed and streamed; for each prompt the four arms
go in a rotating order, so that drift of the shared machine's load falls on all of them alike.
A request's time is from sending it to having read its whole body (the last byte of a stream),
through the keep-alive client of benchmarks/gateway_latency.py.

Reported per arm: p50 of the request time, and p50 of the paired difference against chat
completions on the same prompt (the overhead). Beside it, the translators alone, in process, on
the same prompts: parsing the client body into the internal request (against parsing a chat
body), shaping a stand-in answer, and shaping a 5-chunk stream — microseconds per request.

Usage::

    python benchmarks/translation_overhead.py          # 200 prompts (~2 min)
    python benchmarks/translation_overhead.py --n 30   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, machine, seeded_prompts, write_json  # noqa: E402
from gateway_latency import Connection, gateway_config  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "gateway"))
from standin import ServerThread, StandIn  # noqa: E402

MODEL = "polyroute-auto"
MAX_TOKENS = 256
#: (arm, path) in the order of the first prompt; the order rotates by one per prompt.
ARMS = (("chat", "/v1/chat/completions"), ("messages", "/v1/messages"),
        ("responses", "/v1/responses"), ("responses_nostore", "/v1/responses"))


def body(arm: str, prompt: str, stream: bool) -> bytes:
    """The same request in each API's words."""
    if arm == "chat":
        obj: dict[str, Any] = {"model": MODEL, "max_tokens": MAX_TOKENS,
                               "messages": [{"role": "user", "content": prompt}]}
    elif arm == "messages":
        obj = {"model": MODEL, "max_tokens": MAX_TOKENS,
               "messages": [{"role": "user", "content": prompt}]}
    else:
        obj = {"model": MODEL, "max_output_tokens": MAX_TOKENS, "input": prompt}
        if arm == "responses_nostore":
            obj["store"] = False
    if stream:
        obj["stream"] = True
    return json.dumps(obj).encode()


async def drive(url: str, prompts: list[str], warmup: int) -> dict[str, dict[str, list[float]]]:
    """Request times (ms) per mode and arm, the warm-up prompts left out."""
    host, port = url.removeprefix("http://").split(":")
    conn = Connection(host, int(port))
    times: dict[str, dict[str, list[float]]] = {
        mode: {arm: [] for arm, _ in ARMS} for mode in ("non_streaming", "streaming")}
    try:
        for i, prompt in enumerate(prompts):
            order = ARMS[i % len(ARMS):] + ARMS[:i % len(ARMS)]
            for mode, stream in (("non_streaming", False), ("streaming", True)):
                for arm, path in order:
                    payload = body(arm, prompt, stream)
                    t0 = time.perf_counter()
                    status, _, _ = await conn.post(path, payload)
                    elapsed = (time.perf_counter() - t0) * 1000
                    if status != 200:
                        raise RuntimeError(f"{arm} {mode} answered {status}")
                    if i >= warmup:
                        times[mode][arm].append(elapsed)
    finally:
        await conn.close()
    return times


def summarize(times: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, arms in times.items():
        base = np.array(arms["chat"])
        out[mode] = {}
        for arm, values in arms.items():
            v = np.array(values)
            diff = v - base
            out[mode][arm] = {"n": len(v), "p50_ms": float(np.median(v)),
                              "p90_ms": float(np.percentile(v, 90)),
                              "overhead_p50_ms": float(np.median(diff)),
                              "overhead_iqr_ms": [float(np.percentile(diff, 25)),
                                                  float(np.percentile(diff, 75))]}
    return out


# -- the translators alone -------------------------------------------------------------------------
def _per_call_us(fn: Any, inputs: list[Any], repeat: int = 15) -> float:
    """The fastest of ``repeat`` passes, in mean µs per call of ``fn`` over ``inputs``: on a
    shared machine a pass is only ever slowed by others' work, never sped up, so the fastest is
    the closest to the translator's own cost (timeit's reasoning)."""
    passes = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for x in inputs:
            fn(x)
        passes.append((time.perf_counter_ns() - t0) / 1000 / len(inputs))
    return min(passes)


def standin_stream(chunks: int = 5) -> bytes:
    """The internal stream the stand-in sends: a role chunk, ``chunks`` content chunks, the
    finish chunk, the usage chunk, ``[DONE]``."""
    base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
            "model": MODEL}
    deltas = [{"role": "assistant"}] + [{"content": f"standin answers {i}|"}
                                        for i in range(chunks)]
    events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
              for d in deltas]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 10,
                                                    "completion_tokens": chunks,
                                                    "total_tokens": 10 + chunks}})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + \
        b"data: [DONE]\n\n"


def translators_alone(prompts: list[str]) -> dict[str, dict[str, float]]:
    from polyroute.gateway.apis.messages import MessagesExchange, messages_to_chat
    from polyroute.gateway.apis.responses import (
        ResponsesExchange,
        check_request,
        responses_to_chat,
    )
    from polyroute.gateway.body import parse_chat

    chats = [json.loads(body("chat", p, False)) for p in prompts]
    messages = [json.loads(body("messages", p, False)) for p in prompts]
    responses = [json.loads(body("responses", p, False)) for p in prompts]
    completion = {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0,
                  "model": MODEL, "usage": {"prompt_tokens": 10, "completion_tokens": 20,
                                            "total_tokens": 30},
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {
                      "role": "assistant", "content": "standin answers"}}]}
    chunked = standin_stream()

    def responses_parse(b: dict[str, Any]) -> Any:
        check_request(b)
        return parse_chat(responses_to_chat(b)[0], {})

    def messages_stream(_: Any) -> bytes:
        s = MessagesExchange(MODEL, (), 4).stream()
        return s.feed(chunked) + s.finish()

    def responses_stream(b: dict[str, Any]) -> bytes:
        s = ResponsesExchange(b, []).stream()
        return s.feed(chunked) + s.finish()

    return {
        "parse_us": {"chat": _per_call_us(lambda b: parse_chat(b, {}), chats),
                     "messages": _per_call_us(lambda b: parse_chat(messages_to_chat(b), {}),
                                              messages),
                     "responses": _per_call_us(responses_parse, responses)},
        "answer_us": {"messages": _per_call_us(
            lambda _: MessagesExchange(MODEL, (), 4).answer(completion), prompts),
            "responses": _per_call_us(lambda b: ResponsesExchange(b, []).answer(completion),
                                      responses)},
        "stream_us": {"messages": _per_call_us(messages_stream, prompts),
                      "responses": _per_call_us(responses_stream, responses)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="measured prompts")
    parser.add_argument("--warmup", type=int, default=20, help="prompts sent first, not counted")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from polyroute import Pipeline
    from polyroute.config import validate_config
    from polyroute.data import load_bundled
    from polyroute.gateway import create_app
    from polyroute.gateway.server import uvicorn_config

    result: dict[str, Any] = {"machine": machine()}
    data = load_bundled()
    prompts = seeded_prompts(data, args.warmup + args.n)
    tmp = Path(tempfile.mkdtemp(prefix="polyroute-translation-"))
    Pipeline("knn", featurizer="tfidf", cache=False).fit(data).save(tmp / "router")
    models = [m.name for m in data.models]
    backend = ServerThread(StandIn("standin", record=False)).start()
    try:
        raw = gateway_config(tmp / "router", backend.url, models, tmp / "store.sqlite", 0)
        config = validate_config(raw)
        app = create_app(config, env={})
        gateway = ServerThread(app, uvicorn_config(app, config, log_level="warning")).start(300)
        try:
            t0 = time.perf_counter()
            times = asyncio.run(drive(gateway.url, prompts, args.warmup))
            result["wall_s"] = time.perf_counter() - t0
        finally:
            gateway.stop()
    finally:
        backend.stop()
    try:
        result["load_average_1min_at_end"] = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        pass
    result.update({
        "n_prompts": args.n, "warmup": args.warmup, "max_tokens": MAX_TOKENS,
        "router": f"knn + tfidf ({data.n_prompts} bundled prompts x {len(models)} models)",
        "end_to_end": summarize(times),
        "translators_alone": translators_alone(prompts[args.warmup:]),
    })
    write_json("translation_overhead.json", result)
    (RESULTS / "translation_overhead.md").write_text(markdown(result))
    print(markdown(result))
    return 0


_LABELS = {"chat": "chat completions (baseline)", "messages": "Anthropic Messages",
           "responses": "Responses (store: true)", "responses_nostore": "Responses (store: false)"}


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Translation overhead of the client APIs",
        "",
        f"Written by `benchmarks/translation_overhead.py` on {m['date']} (commit {m['commit']}, "
        f"{m['cpus']} CPUs, load average {m['load_average_1min_at_start']} at start, "
        f"{r.get('load_average_1min_at_end')} at end: a machine shared with other jobs). "
        f"{r['n_prompts']} bundled prompts (seeded, after {r['warmup']} warm-up ones), each sent "
        f"to every API, non-streamed and streamed, one request at a time, the APIs in a rotating "
        f"order; one gateway (router: {r['router']}) in front of the instant stand-in backend "
        f"(5 streamed chunks). A request's time runs to the last byte of its body.",
        "",
        "## End to end (ms per request)",
        "",
        "| mode | API | p50 | p90 | overhead vs chat, p50 of paired differences | IQR |",
        "|---|---|---:|---:|---:|---|",
    ]
    for mode, arms in r["end_to_end"].items():
        for arm, s in arms.items():
            over = "—" if arm == "chat" else f"{s['overhead_p50_ms']:+.3f}"
            iqr = "—" if arm == "chat" else \
                f"[{s['overhead_iqr_ms'][0]:+.3f}, {s['overhead_iqr_ms'][1]:+.3f}]"
            lines.append(f"| {mode.replace('_', '-')} | {_LABELS[arm]} | {s['p50_ms']:.3f} | "
                         f"{s['p90_ms']:.3f} | {over} | {iqr} |")
    t = r["translators_alone"]
    lines += [
        "",
        "## The translators alone (µs per request, in process, same prompts, fastest of 15 "
        "passes)",
        "",
        "| step | chat completions | Messages | Responses |",
        "|---|---:|---:|---:|",
        f"| parse the client body into the internal request (chat: the chat checks only) | "
        f"{t['parse_us']['chat']:.1f} | {t['parse_us']['messages']:.1f} | "
        f"{t['parse_us']['responses']:.1f} |",
        f"| shape a complete answer | 0 (passed through) | {t['answer_us']['messages']:.1f} | "
        f"{t['answer_us']['responses']:.1f} |",
        f"| shape the stand-in's stream (5 content chunks, 9 events) | 0 (passed through) | "
        f"{t['stream_us']['messages']:.1f} | {t['stream_us']['responses']:.1f} |",
        "",
        "Responses with `store: true` also writes each answer and its conversation to the store "
        "(queued to the writer thread, off the request's path); a request with "
        "`previous_response_id` first reads one row, waiting for queued writes.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

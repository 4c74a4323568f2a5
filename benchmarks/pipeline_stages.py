"""What does each optional pipeline stage add to a request, measured inside the gateway?

One process, loopback only, bounded, stops by itself. It starts a stand-in OpenAI-compatible
backend that answers instantly (tests/gateway/standin.py) and two gateways on the same router (a
kNN router on all-MiniLM-L6-v2 embeddings of the bundled data, trained here once and saved; each
gateway loads that directory, with no embedding cache, as ``polyroute serve`` does):

* ``off`` — no rules, routes, guards or cache: ``admit → parse → decide → reserve → serve``;
* ``on``  — two keyword/metadata rules and a domain rule (``signals``, ``rules``), a named route,
  the guards (PII redact + jailbreak flag: ``input_guards``) and the semantic cache
  (``cache_lookup``, and its store hook after the answer).

Each gateway's ``stages`` tuple is replaced by the same stages wrapped in a timer, and so is every
hook a stage registers on ``ctx.after`` (the cache store, the answer restorer), so each stage's
own time is recorded per request. Both gateways get the same seeded bundled prompts, one at a time
(concurrency 1), interleaved (which goes first alternates), through the same keep-alive client as
benchmarks/gateway_latency.py. Every prompt carries a unique reference number, so the cache never
answers (the literal guard refuses a different number; the run checks that none was a hit):
these are the misses, what every new question pays. Hits are measured separately, by repeating
one prompt.

Usage::

    python benchmarks/pipeline_stages.py            # 300 prompts each way (~2 min)
    python benchmarks/pipeline_stages.py --n 40     # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, seeded_prompts, write_json  # noqa: E402
from gateway_latency import Connection, gateway_config  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "gateway"))
from standin import ServerThread, StandIn  # noqa: E402

MODEL = "polyroute-auto"
#: Response headers that say what a stage did (counted per distinct combination).
SHOWN_HEADERS = ("x-polyroute-ended-by", "x-polyroute-rule", "x-polyroute-route",
                 "x-polyroute-guard")
HIT_PROMPT = "Explain in two sentences why the sky is blue."

#: What the ``on`` gateway adds to the ``off`` one's config. The rules are tried in order; on the
#: benchmark's prompts they are evaluated (and so cost) on every request but seldom act, so both
#: gateways mostly route and serve the same way.
STAGES_ON: dict[str, Any] = {
    "signals": {
        "keywords": {"secret": {"words": ["password", "api key"],
                                "patterns": ["sk-[A-Za-z0-9]{20,}"]}},
        "domains": {"legal": {"examples": ["Draft an NDA between two companies",
                                           "Review this lease clause for risks",
                                           "What does indemnification mean in a contract?",
                                           "Write a cease and desist letter"],
                              "threshold": 0.6}},
    },
    "rules": [
        {"name": "no-secrets", "when": {"signal": "keyword.secret"},
         "then": {"block": "requests carrying secrets are refused"}},
        {"name": "research-is-cheap",
         "when": {"signal": "metadata.team", "op": "eq", "value": "research"},
         "then": {"profile": "polyroute-cheap"}},
        {"name": "legal-to-the-big-model", "when": {"signal": "domain", "op": "eq",
                                                    "value": "legal"},
         "then": {"pin": "llama-3.3-nemotron-super-49b-v1"}},
    ],
    "routes": [
        {"name": "code", "description": "write, review or debug program code",
         "examples": ["Write a Python function that reverses a linked list",
                      "What is wrong with this JavaScript snippet?",
                      "Explain this stack trace"],
         "models": ["codegemma-7b", "qwen2.5-7b-instruct"], "threshold": 0.6},
    ],
    "guards": {"pii": {"action": "redact", "restore_in_answer": True},
               "jailbreak": {"action": "flag"}},
    "cache": {"enabled": True},
}


# -- the router ------------------------------------------------------------------------------------
def train_router(path: Path) -> Path:
    """kNN on MiniLM embeddings of the bundled data, saved to ``path`` (the embeddings come from
    the cache in $POLYROUTE_CACHE_DIR when it holds them)."""
    from polyroute import Pipeline
    from polyroute.data import load_bundled

    Pipeline("knn", featurizer="minilm").fit(load_bundled()).save(path)
    return path


# -- timing the stages -----------------------------------------------------------------------------
Stage = Callable[[Any], Awaitable[Any]]


class StageTimes:
    """Per-request stage durations (ms) of one gateway; ``label`` tags the requests now running."""

    def __init__(self) -> None:
        self.label = "warmup"
        self.requests: list[dict[str, Any]] = []

    def wrap(self, stages: tuple[tuple[str, Stage], ...]) -> tuple[tuple[str, Stage], ...]:
        first = stages[0][0]
        return tuple((name, self._timed(name, fn, starts=name == first)) for name, fn in stages)

    def _timed(self, name: str, fn: Stage, *, starts: bool) -> Stage:
        async def run(ctx: Any) -> Any:
            if starts:  # the first stage opens the request's row
                self.requests.append({"label": self.label, "stages": {}, "inner": {}})
            row = self.requests[-1]["stages"]
            hooks, analysed = len(ctx.after), ctx.analysis is not None
            start = time.perf_counter()
            try:
                return await fn(ctx)
            finally:
                row[name] = (time.perf_counter() - start) * 1000
                if not analysed and ctx.analysis is not None:
                    # This stage had the router embed and estimate the routing text (the
                    # decider's own clock, hand-off to its thread included).
                    inner = self.requests[-1]["inner"]
                    inner[f"{name}: analysis"] = ctx.analysis.elapsed_ms
                    inner[f"{name}: the rest"] = row[name] - ctx.analysis.elapsed_ms
                # Hooks this stage registered run after the pipeline: time them too.
                for i in range(hooks, len(ctx.after)):
                    hook_name, hook = ctx.after[i]
                    ctx.after[i] = (hook_name, self._timed_hook(f"after:{hook_name}", hook, row))

        return run

    @staticmethod
    def _timed_hook(name: str, hook: Stage, row: dict[str, float]) -> Stage:
        async def run(response: Any) -> Any:
            start = time.perf_counter()
            try:
                return await hook(response)
            finally:
                row[name] = (time.perf_counter() - start) * 1000

        return run

    def table(self, label: str) -> dict[str, dict[str, float]]:
        """Stage → p50/p99/mean ms over the ``label`` requests, plus ``pipeline`` (their sum)."""
        rows = [r["stages"] for r in self.requests if r["label"] == label]
        names = list(dict.fromkeys(n for r in rows for n in r))
        out = {n: pct([r[n] for r in rows if n in r]) for n in names}
        out["pipeline"] = pct([sum(r.values()) for r in rows])
        inner = [r["inner"] for r in self.requests if r["label"] == label]
        for n in dict.fromkeys(n for r in inner for n in r):
            out[f"({n})"] = pct([r[n] for r in inner if n in r])
        return out


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"n": int(a.size), "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean())}


# -- the run ---------------------------------------------------------------------------------------
def start_gateway(raw: dict[str, Any]) -> tuple[ServerThread, StageTimes, Any]:
    from polyroute.config import validate_config
    from polyroute.gateway import create_app
    from polyroute.gateway.server import uvicorn_config

    config = validate_config(raw)
    app = create_app(config, env={})
    times = StageTimes()
    gw = app.state.gateway
    gw.stages = times.wrap(gw.stages)
    server = ServerThread(app, uvicorn_config(app, config, log_level="warning")).start(300)
    return server, times, gw


def body(text: str) -> bytes:
    return json.dumps({"model": MODEL, "metadata": {"team": "benchmark"},
                       "messages": [{"role": "user", "content": text}]}).encode()


async def send(conns: dict[str, Connection], times: dict[str, StageTimes], order: list[str],
               payload: bytes, label: str, client: dict[str, list[float]],
               ended: dict[str, list[str]]) -> None:
    for name in order:
        times[name].label = label
        start = time.perf_counter()
        status, headers, _ = await conns[name].post("/v1/chat/completions", payload)
        client[name].append((time.perf_counter() - start) * 1000)
        if status != 200:
            raise RuntimeError(f"gateway {name} answered {status}")
        ended[name].append(" / ".join(f"{h.removeprefix('x-polyroute-')}: {headers[h]}"
                                      for h in SHOWN_HEADERS if headers.get(h)) or "routed")


async def drive(urls: dict[str, str], times: dict[str, StageTimes], prompts: list[str],
                warmup: int, hits: int) -> dict[str, Any]:
    conns = {}
    for name, url in urls.items():
        host, port = url.removeprefix("http://").split(":")
        conns[name] = Connection(host, int(port))
    out: dict[str, Any] = {}
    try:
        for label, texts, repeat in (("warmup", prompts[:warmup], False),
                                     ("miss", prompts[warmup:], False),
                                     ("hit", [HIT_PROMPT] * (hits + 1), True)):
            client: dict[str, list[float]] = defaultdict(list)
            ended: dict[str, list[str]] = defaultdict(list)
            for i, text in enumerate(texts):
                # A unique reference number: a different number is never a cache hit.
                payload = body(text if repeat else f"{text}\n\n(ref {label}-{i:05d})")
                order = ["off", "on"] if i % 2 == 0 else ["on", "off"]
                await send(conns, times, order, payload,
                           label if not (repeat and i == 0) else "hit-first", client, ended)
            out[label] = {"client": client, "ended": ended}
    finally:
        for c in conns.values():
            await c.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="measured prompts per gateway")
    parser.add_argument("--warmup", type=int, default=30, help="prompts sent first, not counted")
    parser.add_argument("--hits", type=int, default=100, help="repeats of one prompt (cache hits)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from polyroute.data import load_bundled

    result: dict[str, Any] = {"machine": machine()}
    data = load_bundled()
    prompts = seeded_prompts(data, args.warmup + args.n)
    tmp = Path(tempfile.mkdtemp(prefix="polyroute-stages-"))
    t0 = time.perf_counter()
    router = train_router(tmp / "router")
    print(f"router trained in {time.perf_counter() - t0:.1f} s", flush=True)
    models = [m.name for m in data.models]

    backend = ServerThread(StandIn("standin", record=False)).start()
    servers: list[ServerThread] = []
    try:
        times, urls, stages = {}, {}, {}
        for name in ("off", "on"):
            raw = gateway_config(router, backend.url, models, tmp / f"{name}.sqlite", 0)
            raw["profiles"]["polyroute-cheap"] = {"lam": 100.0}
            if name == "on":
                raw.update(STAGES_ON)
            t0 = time.perf_counter()
            server, times[name], gw = start_gateway(raw)
            servers.append(server)
            urls[name] = server.url
            stages[name] = [n for n, _ in gw.stages]
            print(f"gateway {name} up in {time.perf_counter() - t0:.1f} s: "
                  f"{' → '.join(stages[name])}", flush=True)
        t0 = time.perf_counter()
        runs = asyncio.run(drive(urls, times, prompts, args.warmup, args.hits))
        print(f"{2 * (args.warmup + args.n + args.hits + 1)} requests in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        for server in reversed(servers):
            server.stop()
        backend.stop()

    misses_hit = sum("cache" in e for e in runs["miss"]["ended"]["on"])
    hits_hit = sum("ended-by: cache: hit" in e for e in runs["hit"]["ended"]["on"][1:])
    if misses_hit:
        raise SystemExit(f"{misses_hit} of the cache-busted requests were answered by the cache")
    result.update({
        "router": f"knn + all-MiniLM-L6-v2 ({data.n_prompts} prompts x {len(models)} models)",
        "n": args.n, "warmup": args.warmup, "hit_repeats": args.hits, "concurrency": 1,
        "pipelines": stages, "config_on": STAGES_ON,
        "ended_by_on_miss": dict(sorted(
            {e: runs["miss"]["ended"]["on"].count(e) for e in runs["miss"]["ended"]["on"]}
            .items())),
        "hit_requests_answered_by_cache": hits_hit,
    })
    result["miss"] = {name: {"stages": times[name].table("miss"),
                             "client": pct(runs["miss"]["client"][name])}
                      for name in ("off", "on")}
    result["hit"] = {name: {"stages": times[name].table("hit"),
                            "client": pct(runs["hit"]["client"][name][1:])}
                     for name in ("off", "on")}
    result["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]
    path = write_json("pipeline_stages.json", result)
    md = markdown(result)
    path.with_suffix(".md").write_text(md)
    print(md)
    return 0


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    off, on = r["miss"]["off"], r["miss"]["on"]
    names = list(dict.fromkeys([*on["stages"], *off["stages"]]))
    names = [n for n in names if n != "pipeline" and n[0] != "("] + ["pipeline"] + [
        n for n in names if n[0] == "("]
    lines = [
        "# Added latency of each pipeline stage",
        "",
        f"Machine: {m['cpus']} CPUs shared with other work, load average "
        f"{m['load_average_1min_at_start']:.2f} at start and {m['load_average_1min_at_end']:.2f} "
        f"at the end, Python {m['python']}, commit {m['commit']}, {m['date']}. "
        f"Router: {r['router']}. One process: a stand-in backend that answers instantly and two "
        f"gateways on the same saved router, `off` ({' → '.join(r['pipelines']['off'])}) and "
        f"`on` ({' → '.join(r['pipelines']['on'])}; two keyword/metadata rules and a domain rule, "
        f"a named route, PII redact + jailbreak flag, the semantic cache). {r['n']} seeded bundled "
        f"prompts, each sent to both (concurrency 1, interleaved, after {r['warmup']} warm-up "
        f"prompts), each with a unique reference number so the cache never answers (checked: 0 "
        f"hits). Stage times are taken inside the gateway, by wrapping each stage (and each "
        f"hook a stage registers to run on the answer, `after:*`). Produced by "
        f"`python benchmarks/pipeline_stages.py`.",
        "",
        "## Cache misses (every new question)",
        "",
        "| stage | off p50 | off p99 | on p50 | on p99 | added p50 | added p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(t: dict[str, Any], n: str, k: str) -> str:
        return f"{t['stages'][n][k]:.2f}" if n in t["stages"] else "—"

    def added(n: str, k: str) -> str:
        if n.startswith("("):
            return "—"
        a = off["stages"].get(n, {}).get(k, 0.0)
        b = on["stages"].get(n, {}).get(k, 0.0)
        return f"{b - a:+.2f}"

    for n in names:
        lines.append(f"| {'**pipeline (sum)**' if n == 'pipeline' else n} | "
                     f"{cell(off, n, 'p50_ms')} | {cell(off, n, 'p99_ms')} | "
                     f"{cell(on, n, 'p50_ms')} | {cell(on, n, 'p99_ms')} | "
                     f"{added(n, 'p50_ms')} | {added(n, 'p99_ms')} |")
    co, cn = off["client"], on["client"]
    lines += [
        f"| **end to end (client)** | {co['p50_ms']:.2f} | {co['p99_ms']:.2f} | "
        f"{cn['p50_ms']:.2f} | {cn['p99_ms']:.2f} | {cn['p50_ms'] - co['p50_ms']:+.2f} | "
        f"{cn['p99_ms'] - co['p99_ms']:+.2f} |",
        "",
        "All in ms. *added* = on − off at the same percentile (for a stage only `on` has, its own "
        "time; percentiles do not add up, so the stage rows need not sum to the pipeline row). "
        "The router's MiniLM embedding of the routing text is computed once per request: in "
        "`off` by `decide`; in `on` by the first stage that needs it (the domain signal in "
        "`rules`, else the cache lookup), after which the jailbreak classifier, the cache and "
        "`decide` reuse it — so `decide` gets cheaper in `on` and that time shows up earlier.",
        "Rows in parentheses are part of the stage they name: the router's analysis (MiniLM "
        "embedding + kNN estimates) that stage asked for, and the stage's time without it.",
        "",
        "What the `on` gateway's headers said about the misses (count per distinct set): "
        + "; ".join(f"{k} × {v}" for k, v in r["ended_by_on_miss"].items()) + ".",
        "",
        f"## Cache hits ({r['hit_repeats']} repeats of one prompt, after its first request)",
        "",
        "| stage | off p50 | off p99 | on p50 | on p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    hoff, hon = r["hit"]["off"], r["hit"]["on"]
    hnames = list(dict.fromkeys([*hon["stages"], *hoff["stages"]]))
    hnames = [n for n in hnames if n != "pipeline" and n[0] != "("] + ["pipeline"] + [
        n for n in hnames if n[0] == "("]
    for n in hnames:
        lines.append(f"| {'**pipeline (sum)**' if n == 'pipeline' else n} | "
                     f"{cell(hoff, n, 'p50_ms')} | {cell(hoff, n, 'p99_ms')} | "
                     f"{cell(hon, n, 'p50_ms')} | {cell(hon, n, 'p99_ms')} |")
    ho, hn = hoff["client"], hon["client"]
    lines += [
        f"| **end to end (client)** | {ho['p50_ms']:.2f} | {ho['p99_ms']:.2f} | "
        f"{hn['p50_ms']:.2f} | {hn['p99_ms']:.2f} |",
        "",
        f"{r['hit_requests_answered_by_cache']} of the {r['hit_repeats']} repeats were answered "
        f"by the cache (exact match: no decision, no upstream call). The domain rule still has "
        f"the text embedded before the cache lookup (rules run first), so with a domain rule "
        f"(or a named route) a hit pays the embedding; without one an exact hit would not. "
        f"`off` has no "
        f"cache: it routes and serves the repeated prompt every time (its embedding of the same "
        f"text is not cached either: `router.embedding_cache` is off, as by default).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Routing at proxy speed: polyroute pinned and routed side by side with a bare backend and LiteLLM.

One run, one machine, the same loopback stand-in backend answering instantly (tests/gateway/
standin.py under uvicorn, 10 chunks when streaming) and the same seeded random bundled prompts for
every target:

* ``direct``          — the stand-in itself (the baseline every "added" number subtracts);
* ``litellm``         — the LiteLLM proxy (installed here into its own venv, never a project
  dependency; skipped with a message when it cannot be installed);
* ``pinned``          — polyroute naming a backend (no routing: the proxy's own cost);
* ``pinned-httpx``    — the same with httpx as the client of its upstream calls (the one before
  aiohttp became the default, ``server.upstream_client``);
* ``routed-minilm``   — polyroute ``polyroute-auto`` with the MiniLM encoder + kNN (the exact path,
  the default featurizer until ``minilm-static-tuned+tfidf``);
* ``routed-<name>``   — the same with each featurizer of ``--featurizers`` (e.g. the default
  ``minilm-static-tuned+tfidf``, tfidf).

Each proxy runs alone on CPU 0 (``taskset``); the stand-in and this load generator share CPU 1.
For each of plain / streaming × concurrency 1 / 32, the targets are measured in turn and the whole
round is repeated ``--reps`` times (interleaved, so slow minutes of a shared machine hit every
target alike); the tables give medians over the rounds. Proxy CPU per request is the proxy
process tree's user+system CPU time during a scenario divided by its requests.

Usage::

    python benchmarks/proxy_speed.py                       # minilm + tfidf, LiteLLM if installable
    python benchmarks/proxy_speed.py --featurizers tfidf,static --requests 500
    python benchmarks/proxy_speed.py --quick --no-litellm  # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_json  # noqa: E402
from gateway_latency import KEY, free_port, gateway_config, run_load, wait_http  # noqa: E402

#: Trained routers are kept here between runs (POLYROUTE_BENCH_ROUTERS moves them).
ROUTERS = Path(os.environ.get("POLYROUTE_BENCH_ROUTERS") or ROOT / "runs" / "proxy-bench")
LITELLM_VENV = Path(os.environ.get("POLYROUTE_LITELLM_VENV", "/tmp/litellm-venv"))
LITELLM_SPEC = "litellm[proxy]==1.106.*"
PROXY_CPU, CLIENT_CPU = "0", "1"
SCENARIOS = [(False, 1), (False, 32), (True, 1), (True, 32)]


# -- processes ------------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    url: str
    model: str
    #: The proxy's process (None for the direct baseline), whose tree's CPU time is measured.
    proc: subprocess.Popen | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (from /proc; Linux only)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(entry))
        stats[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


def ensure_router(featurizer: str) -> Path:
    """A kNN router on ``featurizer`` trained on the bundled data (once, kept in runs/)."""
    path = ROUTERS / f"router-knn-{featurizer}"
    if (path / "polyroute.json").is_file():
        return path
    print(f"training knn on {featurizer} into {path} (one-off)...", flush=True)
    env = {**os.environ, "POLYROUTE_CACHE_DIR": str(ROOT / "runs" / "cache")}
    subprocess.run([sys.executable, "-m", "polyroute", "train", "--router", "knn",
                    "--featurizer", featurizer, "--out", str(path)], check=True, env=env)
    return path


def ensure_litellm() -> Path | None:
    """The ``litellm`` command of a venv holding LiteLLM 1.106.x, installed there if missing;
    None (with the reason printed) when it cannot be installed."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.is_file():
        return exe
    print(f"installing {LITELLM_SPEC} into {LITELLM_VENV} (one-off)...", flush=True)
    try:
        subprocess.run(["python3", "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", LITELLM_SPEC],
                       check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"LiteLLM skipped: cannot install {LITELLM_SPEC} ({exc})", flush=True)
        return None
    return exe if exe.is_file() else None


def litellm_version() -> str:
    out = subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-c",
                          "import importlib.metadata as m; print(m.version('litellm'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


def start_litellm(exe: Path, backend_url: str, model: str, port: int, tmp: Path,
                  env: dict[str, str]) -> subprocess.Popen:
    import yaml

    config = tmp / "litellm.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": model,
                        "litellm_params": {"model": f"openai/{model}",
                                           "api_base": f"{backend_url}/v1", "api_key": "x"}}],
        "litellm_settings": {"drop_params": True, "telemetry": False},
        # The benchmark's client key, as for polyroute (LiteLLM refuses to start without one;
        # it calls a key that is not "sk-..." weak, hence the permission).
        "general_settings": {"master_key": KEY,
                             "dangerously_permit_weak_or_unset_master_key": True},
    }))
    lenv = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    lenv.update({"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                 "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return subprocess.Popen(pinned(PROXY_CPU, [str(exe), "--config", str(config), "--host",
                                               "127.0.0.1", "--port", str(port),
                                               "--num_workers", "1"]),
                            env=lenv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def start_gateway(router: Path, backend_url: str, models: list[str], port: int, tmp: Path,
                  env: dict[str, str], upstream_client: str | None = None,
                  decide_on: str | None = None) -> subprocess.Popen:
    """``polyroute serve`` on the proxy's CPU; ``upstream_client`` overrides the config's
    default HTTP client of upstream calls (aiohttp), ``decide_on`` where decisions run."""
    import yaml

    cfg = gateway_config(router, backend_url, models, tmp / f"state-{port}.sqlite", port)
    if upstream_client is not None:
        cfg["server"]["upstream_client"] = upstream_client
    if decide_on is not None:
        cfg["router"]["decide_on"] = decide_on
    path = tmp / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.Popen(pinned(PROXY_CPU, [sys.executable, "-m", "polyroute", "serve",
                                               "--config", str(path)]), env=env)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- measuring ------------------------------------------------------------------------------------
def measure(target: Target, prompts: list[str], stream: bool, concurrency: int,
            n: int) -> dict[str, Any]:
    before = tree_cpu_seconds(target.proc.pid) if target.proc is not None else None
    r = asyncio.run(run_load(target.url, target.model, prompts, stream=stream,
                             concurrency=concurrency, n=n, warmup=min(50, n // 5)))
    r.pop("client_ms", None)
    if before is not None:
        assert target.proc is not None
        # Warm-up requests ran inside the window too.
        r["proxy_cpu_ms_per_request"] = (tree_cpu_seconds(target.proc.pid) - before) * 1000 / \
            (n + min(50, n // 5))
    return r


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(targets: list[Target]) -> list[dict[str, Any]]:
    rows = []
    for t in targets:
        for stream, conc in SCENARIOS:
            runs = [r for r in t.runs if r["stream"] == stream and r["concurrency"] == conc]
            if not runs:
                continue
            rows.append({"target": t.name, "stream": stream, "concurrency": conc,
                         "p50_ms": median_of(runs, "p50_ms"), "p99_ms": median_of(runs, "p99_ms"),
                         "throughput_rps": median_of(runs, "throughput_rps"),
                         "proxy_cpu_ms_per_request": median_of(runs, "proxy_cpu_ms_per_request"),
                         "repetitions": len(runs)})
    base = {(r["stream"], r["concurrency"]): r for r in rows if r["target"] == "direct"}
    for r in rows:
        b = base.get((r["stream"], r["concurrency"]))
        if b is not None and r["target"] != "direct":
            r["added_p50_ms"] = r["p50_ms"] - b["p50_ms"]
            r["added_p99_ms"] = r["p99_ms"] - b["p99_ms"]
    return rows


def setup(featurizers_arg: str) -> tuple[list[str], dict[str, Path], list[str], list[str]]:
    """Pin this process beside the stand-in; the featurizers (minilm first), their trained
    routers, the router's models and the seeded prompts every target is sent."""
    try:
        os.sched_setaffinity(0, {int(CLIENT_CPU)})  # the load generator beside the stand-in
    except (AttributeError, OSError):
        pass
    from polyroute.data import load_bundled
    from polyroute.pipeline import Pipeline

    featurizers = ["minilm"] + [f for f in featurizers_arg.split(",") if f and f != "minilm"]
    routers = {f: ensure_router(f) for f in featurizers}
    models = list(Pipeline.load(routers["minilm"], cache=False).models)
    data = load_bundled()
    rng = np.random.default_rng(0)
    prompts = [data.prompts[i] for i in rng.choice(data.n_prompts, 2000, replace=False)]
    return featurizers, routers, models, prompts


# -- the run --------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--featurizers", default="tfidf",
                        help="comma-separated featurizers routed besides minilm (default tfidf)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--quick", action="store_true", help="100 requests, one repetition")
    parser.add_argument("--targets", help="only these targets (comma-separated names, e.g. "
                                          "direct,pinned,routed-tfidf)")
    parser.add_argument("--scenarios", help="only these scenarios, e.g. plain-32,stream-1")
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite proxy_speed.md from proxy_speed.json, measure nothing")
    parser.add_argument("--serve-backend", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.markdown_only:
        import json

        from _common import RESULTS

        write_markdown(json.loads((RESULTS / "proxy_speed.json").read_text()),
                       RESULTS / "proxy_speed.md")
        return 0
    if args.serve_backend:
        from gateway_latency import serve_backend

        serve_backend(args.serve_backend)
        return 0
    if args.quick:
        args.requests, args.reps = 100, 1
    featurizers, routers, models, prompts = setup(args.featurizers)
    lengths = [len(p) for p in prompts]
    result: dict[str, Any] = {
        "machine": machine(), "requests_per_scenario": args.requests, "repetitions": args.reps,
        "prompts": {"count": len(prompts), "median_chars": float(np.median(lengths)),
                    "max_chars": max(lengths), "seed": 0},
        "pinning": f"proxy on CPU {PROXY_CPU}; stand-in and load generator on CPU {CLIENT_CPU}",
    }
    litellm = None if args.no_litellm else ensure_litellm()
    if litellm is None:
        result["litellm"] = "skipped (--no-litellm)" if args.no_litellm else \
            f"skipped: {LITELLM_SPEC} could not be installed"
    tmp = Path(tempfile.mkdtemp(prefix="polyroute-proxy-speed-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs: list[subprocess.Popen] = []
    targets: list[Target] = []
    try:
        backend_port = free_port()
        backend = subprocess.Popen(pinned(CLIENT_CPU, [sys.executable, __file__,
                                                       "--serve-backend", str(backend_port)]),
                                   env=env)
        procs.append(backend)
        backend_url = f"http://127.0.0.1:{backend_port}"
        wait_http(backend_url, backend, "the stand-in backend")
        targets.append(Target("direct", backend_url, models[0]))
        if litellm is not None:
            port = free_port()
            proc = start_litellm(litellm, backend_url, models[0], port, tmp, env)
            procs.append(proc)
            try:
                wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, "LiteLLM", 180)
            except SystemExit as exc:
                result["litellm"] = f"skipped: it did not start ({exc})"
            else:
                result["litellm"] = f"LiteLLM proxy {litellm_version()}, one worker"
                targets.append(Target("litellm", f"http://127.0.0.1:{port}", models[0], proc))
        for f in featurizers:
            port = free_port()
            proc = start_gateway(routers[f], backend_url, models, port, tmp, env)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", proc, f"the gateway ({f})")
            if f == "minilm":
                targets.append(Target("pinned", url, models[0], proc))
                # The same gateway with httpx for its upstream calls (the client before aiohttp).
                h_port = free_port()
                h_proc = start_gateway(routers[f], backend_url, models, h_port, tmp, env,
                                       "httpx")
                procs.append(h_proc)
                wait_http(f"http://127.0.0.1:{h_port}/healthz", h_proc, "the gateway (httpx)")
                targets.append(Target("pinned-httpx", f"http://127.0.0.1:{h_port}", models[0],
                                      h_proc))
            targets.append(Target(f"routed-{f}", url, "polyroute-auto", proc))
            if f != "minilm":
                # The same router deciding on a worker thread, as before decisions moved onto
                # the event loop for featurizers that run no model (router.decide_on).
                d_port = free_port()
                d_proc = start_gateway(routers[f], backend_url, models, d_port, tmp, env,
                                       decide_on="thread")
                procs.append(d_proc)
                wait_http(f"http://127.0.0.1:{d_port}/healthz", d_proc, f"the gateway ({f})")
                targets.append(Target(f"routed-{f}-thread", f"http://127.0.0.1:{d_port}",
                                      "polyroute-auto", d_proc))
        if args.targets:
            targets = [t for t in targets if t.name in args.targets.split(",")]
        scenarios = [(s, c) for s, c in SCENARIOS if not args.scenarios or
                     f"{'stream' if s else 'plain'}-{c}" in args.scenarios.split(",")]
        for rep in range(args.reps):
            for stream, conc in scenarios:
                n = args.requests if conc > 1 else max(args.requests // 2, 50)
                for t in targets:
                    r = measure(t, prompts, stream, conc, n)
                    r["repetition"] = rep
                    t.runs.append(r)
                    cpu = r.get("proxy_cpu_ms_per_request")
                    print(f"  rep {rep} {'stream' if stream else 'plain ':6s} c={conc:<2d} "
                          f"{t.name:14s} p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms  "
                          f"{r['throughput_rps']:7.1f} req/s"
                          + (f"  cpu {cpu:.2f} ms/req" if cpu is not None else ""), flush=True)
            result["repetitions"] = rep + 1
            path = save(result, targets)  # after every round: a cut-short run keeps its rounds
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    print(path.with_suffix(".md").read_text())
    return 0


def save(result: dict[str, Any], targets: list[Target]) -> Path:
    result["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]
    result["runs"] = {t.name: t.runs for t in targets}
    result["summary"] = summarise(targets)
    path = write_json("proxy_speed.json", result)
    write_markdown(result, path.with_suffix(".md"))
    return path


def _fmt(x: float | None, unit: str = " ms", digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}{unit}"


def write_markdown(result: dict[str, Any], path: Path) -> None:
    m = result["machine"]
    rows = {(r["target"], r["stream"], r["concurrency"]): r for r in result["summary"]}
    names = list(dict.fromkeys(r["target"] for r in result["summary"]))

    def get(name: str, stream: bool, conc: int, key: str) -> float | None:
        r = rows.get((name, stream, conc))
        return None if r is None else r.get(key)

    lite = {s: get("litellm", s, 32, "throughput_rps") for s in (False, True)}
    pin = {s: get("pinned", s, 32, "throughput_rps") for s in (False, True)}
    lines = [
        "# Routing at proxy speed",
        "",
        f"Machine: {m['cpus']} CPUs shared with other work, load average "
        f"{m['load_average_1min_at_start']:.2f} at start and {m['load_average_1min_at_end']:.2f} "
        f"at the end; Python {m['python']}, commit {m['commit']}, {m['date']}. "
        f"{result['pinning']}. Loopback stand-in backend answering instantly (10 chunks when "
        f"streaming); {result['prompts']['count']} seeded random bundled prompts (median "
        f"{result['prompts']['median_chars']:.0f} characters, up to "
        f"{result['prompts']['max_chars']:,}). {result['requests_per_scenario']} requests per "
        f"scenario at concurrency 32, half that at concurrency 1, after a warm-up; "
        f"{result['repetitions']} repetitions interleaved across targets, medians shown. "
        f"LiteLLM: {result.get('litellm', '—')}. Produced by `python benchmarks/proxy_speed.py`.",
        "",
        "Added = target − direct at the same percentile. Ratios: routed or pinned throughput "
        "over LiteLLM's in the same run; *of pinned* = over polyroute's own pinned throughput.",
        "",
    ]
    for stream in (False, True):
        lines += [f"## {'Streaming' if stream else 'Non-streaming'}", "",
                  "| target | c=1 p50 | added c=1 p50 | added c=1 p99 | c=32 p50 | c=32 req/s | "
                  "× LiteLLM | of pinned | proxy CPU per request (c=32) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in names:
            rps = get(name, stream, 32, "throughput_rps")
            ratio = f"{rps / lite[stream]:.1f}×" if rps and lite[stream] and \
                name not in ("direct", "litellm") else "—"
            of_pin = f"{rps / pin[stream]:.2f}" if rps and pin[stream] and \
                name.startswith("routed") else "—"
            lines.append(
                f"| {name} | {_fmt(get(name, stream, 1, 'p50_ms'))} | "
                f"{_fmt(get(name, stream, 1, 'added_p50_ms'))} | "
                f"{_fmt(get(name, stream, 1, 'added_p99_ms'))} | "
                f"{_fmt(get(name, stream, 32, 'p50_ms'))} | {_fmt(rps, '', 0)} | {ratio} | "
                f"{of_pin} | {_fmt(get(name, stream, 32, 'proxy_cpu_ms_per_request'))} |")
        lines.append("")
    lines += ["## Every repetition", "",
              "| target | mode | conc. | rep | p50 | p99 | req/s | proxy CPU/req | failed |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, runs in result["runs"].items():
        for r in runs:
            lines.append(f"| {name} | {'stream' if r['stream'] else 'plain'} | "
                         f"{r['concurrency']} | {r['repetition']} | {r['p50_ms']:.2f} | "
                         f"{r['p99_ms']:.2f} | {r['throughput_rps']:.0f} | "
                         f"{_fmt(r.get('proxy_cpu_ms_per_request'))} | {r.get('failed', 0)} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

"""Where a gateway request's CPU goes: py-spy samples of `polyroute serve` under load.

The setup of ``proxy_speed.py`` (stand-in backend and load generator on CPU 1, the gateway alone
on CPU 0), one scenario at a time: pinned and routed (MiniLM + kNN, and each featurizer of
``--featurizers``), non-streaming, at concurrency 1 and 32. While each runs, ``py-spy record``
samples the gateway (all threads, idle ones left out); the summary keeps, per scenario, the
frames with the most samples on top of the stack (*self*) and the project's frames with the
most samples anywhere in the stack (*inclusive*). Appends a section to
``benchmarks/results/proxy_profile.md`` (``--label`` names it, e.g. "before" or "after") and
keeps the raw collapsed stacks in the JSON.

Usage::

    python benchmarks/proxy_profile.py --label before
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, write_json  # noqa: E402
from gateway_latency import free_port, run_load, wait_http  # noqa: E402
from proxy_speed import CLIENT_CPU, pinned, setup, start_gateway, stop  # noqa: E402

PY_SPY = Path(sys.executable).parent / "py-spy"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
TOP = 12


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``, a site-packages path shortened to
    the package."""
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m["file"]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/src/polyroute/" in path:
        path = "polyroute/" + path.split("/src/polyroute/", 1)[1]
    elif "/lib/python" in path:
        path = "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return f"{m['func']} ({path})"


def summarise(collapsed: str) -> dict[str, Any]:
    self_counts: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith(("thread", "process")) else ""
        frames = [frame_name(f) for f in frames if not f.startswith(("thread", "process"))]
        if not frames:
            continue
        total += n
        threads[thread] += n
        self_counts[frames[-1]] += n
        for f in set(frames):
            if "polyroute/" in f:
                incl[f] += n
    return {"samples": total,
            "threads": {k or "?": v for k, v in threads.most_common()},
            "self": [(f, n) for f, n in self_counts.most_common(TOP)],
            "inclusive_polyroute": [(f, n) for f, n in incl.most_common(TOP)]}


def profile_scenario(gateway: subprocess.Popen, url: str, model: str, prompts: list[str],
                     concurrency: int, n: int, out: Path) -> dict[str, Any]:
    spy = subprocess.Popen([str(PY_SPY), "record", "--pid", str(gateway.pid), "--format", "raw",
                            "--threads", "--rate", "250", "--output", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    started = time.perf_counter()
    r = asyncio.run(run_load(url, model, prompts, stream=False, concurrency=concurrency, n=n,
                             warmup=10))
    wall = time.perf_counter() - started
    spy.send_signal(2)  # SIGINT: py-spy writes what it has
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
    collapsed = out.read_text() if out.is_file() else ""
    s = summarise(collapsed)
    return {"concurrency": concurrency, "requests": n, "wall_s": wall,
            "p50_ms": r["p50_ms"], "throughput_rps": r["throughput_rps"], **s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="section name, e.g. before / after")
    parser.add_argument("--featurizers", default="tfidf")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    featurizers, routers, models, prompts = setup(args.featurizers)
    tmp = Path(tempfile.mkdtemp(prefix="polyroute-proxy-profile-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    here = Path(__file__).resolve().parent
    backend_port = free_port()
    backend = subprocess.Popen(pinned(CLIENT_CPU, [sys.executable, str(here / "proxy_speed.py"),
                                                   "--serve-backend", str(backend_port)]),
                               env=env)
    backend_url = f"http://127.0.0.1:{backend_port}"
    scenarios: list[dict[str, Any]] = []
    try:
        wait_http(backend_url, backend, "the stand-in backend")
        for f in featurizers:
            port = free_port()
            gw = start_gateway(routers[f], backend_url, models, port, tmp, env)
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{url}/healthz", gw, "the gateway")
                plan = ([("pinned", models[0])] if f == "minilm" else []) + \
                    [(f"routed-{f}", "polyroute-auto")]
                for name, model in plan:
                    for conc in (1, 32):
                        n = args.requests if conc == 32 else args.requests // 2
                        s = profile_scenario(gw, url, model, prompts, conc, n,
                                             tmp / f"{name}-{conc}.txt")
                        s["target"] = name
                        scenarios.append(s)
                        print(f"  {name:14s} c={conc:<2d} p50 {s['p50_ms']:7.2f} ms "
                              f"{s['throughput_rps']:6.1f} req/s  {s['samples']} samples",
                              flush=True)
            finally:
                stop(gw)
    finally:
        stop(backend)
        shutil.rmtree(tmp, ignore_errors=True)
    m = machine()
    m["load_average_1min_at_end"] = os.getloadavg()[0]
    json_path = RESULTS / "proxy_profile.json"
    import json

    previous = json.loads(json_path.read_text()) if json_path.is_file() else {}
    previous[args.label] = {"machine": m, "scenarios": scenarios}
    write_json("proxy_profile.json", previous)
    write_markdown(previous, RESULTS / "proxy_profile.md")
    print((RESULTS / "proxy_profile.md").read_text())
    return 0


def write_markdown(profiles: dict[str, Any], path: Path) -> None:
    lines = ["# Where the gateway's CPU goes (py-spy)", "",
             "Produced by `python benchmarks/proxy_profile.py --label LABEL`: the gateway alone on "
             "CPU 0, the stand-in backend and the load generator on CPU 1, non-streaming, real "
             "bundled prompts; py-spy samples every thread of `polyroute serve` at 250 Hz (idle "
             "ones left out). *self*: samples with that frame on top of the stack; *inclusive*: "
             "samples with the project's frame anywhere in the stack. Percentages of all samples "
             "of the scenario.", ""]
    labels = list(profiles)
    if len(labels) >= 2:  # the first and the last side by side
        first, last = labels[0], labels[-1]
        old = {(s["target"], s["concurrency"]): s for s in profiles[first]["scenarios"]}
        lines += [f"## {first} → {last}", "",
                  "| target | conc. | p50 | req/s | top self frame |", "|---|---:|---:|---:|---|"]
        for s in profiles[last]["scenarios"]:
            o = old.get((s["target"], s["concurrency"]))
            if o is None:
                continue
            top = s["self"][0][0] if s["self"] else "—"
            lines.append(f"| {s['target']} | {s['concurrency']} | {o['p50_ms']:.2f} → "
                         f"{s['p50_ms']:.2f} ms | {o['throughput_rps']:.0f} → "
                         f"{s['throughput_rps']:.0f} | {top} |")
        lines += ["", "Both runs on a shared machine (load averages below): compare the "
                  "proportions within a run more than the absolute times across runs.", ""]
    for label, p in profiles.items():
        m = p["machine"]
        lines += [f"## {label}", "",
                  f"Commit {m['commit']}, {m['date']}, load average "
                  f"{m['load_average_1min_at_start']:.2f} → {m['load_average_1min_at_end']:.2f}.",
                  ""]
        for s in p["scenarios"]:
            total = max(s["samples"], 1)
            lines += [f"### {label}: {s['target']}, concurrency {s['concurrency']} — "
                      f"p50 {s['p50_ms']:.2f} ms, {s['throughput_rps']:.0f} req/s, "
                      f"{s['samples']} samples", "",
                      "threads: " + ", ".join(f"{k} {100 * v / total:.0f}%"
                                              for k, v in list(s["threads"].items())[:4]), "",
                      "| self | % | inclusive (polyroute) | % |", "|---|---:|---|---:|"]
            for i in range(TOP):
                a = s["self"][i] if i < len(s["self"]) else ("", 0)
                b = s["inclusive_polyroute"][i] if i < len(s["inclusive_polyroute"]) else ("", 0)
                lines.append(f"| {a[0]} | {100 * a[1] / total:.1f} | {b[0]} | "
                             f"{100 * b[1] / total:.1f} |")
            lines.append("")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

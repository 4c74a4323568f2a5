"""The gateway at two commits side by side in one run: did a change make the proxied path faster?

Across runs on a shared machine throughput moves by more than most changes do, so a change is
measured against its base in the same run: a git worktree of ``--base`` (its ``src`` put first on
``PYTHONPATH``) and this checkout each serve with the same trained router (trained by this
checkout, loaded by both), the same config and the stand-in backend of ``proxy_speed.py``; each
gateway alone on CPU 0, the stand-in and the load generator on CPU 1; pinned and routed, the
scenarios taking turns between the two commits round after round. Reported: median throughput
and proxy CPU per request of each, and the median and range of the per-round ratio head / base.

Usage::

    python benchmarks/gateway_ab.py --base 7742f32            # this checkout against 7742f32
    python benchmarks/gateway_ab.py --base HEAD~3 --reps 3 --scenarios plain-32
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    ROOT,
    machine,
    machine_at_end,
    machine_sentence,
    write_json,
)
from gateway_latency import free_port, wait_http  # noqa: E402
from proxy_speed import CLIENT_CPU, Target, measure, pinned, setup, start_gateway, stop  # noqa: E402


def short_commit(ref: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def worktree(ref: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(where), ref], cwd=ROOT,
                   check=True)
    return where


def imports_from(env: dict[str, str]) -> str:
    """Where ``polyroute`` is imported from under ``env`` (the worktree's, checked, not assumed)."""
    return subprocess.run([sys.executable, "-c", "import polyroute; print(polyroute.__file__)"],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()


def parse_scenarios(arg: str) -> list[tuple[bool, int]]:
    out = []
    for item in arg.split(","):
        mode, conc = item.split("-")
        if mode not in ("plain", "stream"):
            raise SystemExit(f"--scenarios: {item!r}: expected plain-N or stream-N")
        out.append((mode == "stream", int(conc)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--featurizer", default="minilm-static-tuned+tfidf")
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--reps", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--scenarios", default="plain-32,stream-32,plain-1")
    args = parser.parse_args()
    scenarios = parse_scenarios(args.scenarios)
    base_commit, head = short_commit(args.base), machine()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    featurizers, routers, models, prompts = setup(args.featurizer)
    router = routers[featurizers[-1]]
    tmp = Path(tempfile.mkdtemp(prefix="polyroute-gateway-ab-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs: list[subprocess.Popen] = []
    tree = worktree(args.base, tmp / "base")
    try:
        base_env = {**env, "PYTHONPATH": os.pathsep.join(
            [str(tree / "src"), *filter(None, [env.get("PYTHONPATH")])])}
        where = imports_from(base_env)
        if not where.startswith(str(tree)):
            raise SystemExit(f"the base gateway would import polyroute from {where}")
        backend_port = free_port()
        backend = subprocess.Popen(pinned(CLIENT_CPU, [sys.executable,
                                                       str(ROOT / "benchmarks/proxy_speed.py"),
                                                       "--serve-backend", str(backend_port)]),
                                   env=env)
        procs.append(backend)
        backend_url = f"http://127.0.0.1:{backend_port}"
        wait_http(backend_url, backend, "the stand-in backend")
        targets: list[Target] = []
        for side, side_env in (("base", base_env), ("head", env)):
            port = free_port()
            proc = start_gateway(router, backend_url, models, port, tmp, side_env)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", proc, f"the {side} gateway")
            targets += [Target(f"{side} pinned", url, models[0], proc),
                        Target(f"{side} routed", url, "polyroute-auto", proc)]
        for rep in range(args.reps):
            for stream, conc in scenarios:
                n = args.requests if conc > 1 else args.requests // 2
                for t in targets:
                    r = measure(t, prompts, stream, conc, n)
                    r.update(rep=rep, stream=stream, concurrency=conc)
                    t.runs.append(r)
                    print(f"  rep {rep} {'stream' if stream else 'plain':6s} c={conc:<3d} "
                          f"{t.name:12s} {r['throughput_rps']:8.1f} req/s  "
                          f"cpu {r.get('proxy_cpu_ms_per_request', 0):.2f} ms/req", flush=True)
    finally:
        for p in reversed(procs):
            stop(p)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"machine": machine_at_end(head), "base": base_commit,
              "head_src_uncommitted": bool(dirty), "featurizer": args.featurizer,
              "requests_per_scenario": args.requests, "repetitions": args.reps,
              "runs": {t.name: t.runs for t in targets}, "rows": rows(targets, scenarios)}
    write_json("gateway_ab.json", result)
    write_markdown(result, RESULTS / "gateway_ab.md")
    return 0


def rows(targets: list[Target], scenarios: list[tuple[bool, int]]) -> list[dict[str, Any]]:
    by_name = {t.name: t for t in targets}

    def runs(name: str, stream: bool, conc: int) -> list[dict[str, Any]]:
        return [r for r in by_name[name].runs
                if r["stream"] == stream and r["concurrency"] == conc]

    out = []
    for kind in ("pinned", "routed"):
        for stream, conc in scenarios:
            base = runs(f"base {kind}", stream, conc)
            head = runs(f"head {kind}", stream, conc)
            base_of_round = {r["rep"]: r for r in base}  # a round's ratio pairs by round
            ratios = [h["throughput_rps"] / base_of_round[h["rep"]]["throughput_rps"]
                      for h in head]
            out.append({
                "target": kind, "stream": stream, "concurrency": conc,
                **{f"{side}_{key}": statistics.median(r[key] for r in rs)
                   for side, rs in (("base", base), ("head", head))
                   for key in ("throughput_rps", "proxy_cpu_ms_per_request")},
                "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
                "ratio_max": max(ratios)})
    return out


def write_markdown(result: dict[str, Any], path: Path) -> None:
    m = result["machine"]
    lines = [
        f"# The gateway at {m['commit']} against {result['base']}, side by side",
        "",
        machine_sentence(m) + " Head: that commit"
        + (" with uncommitted changes under src" if result["head_src_uncommitted"] else "")
        + f"; base: {result['base']} (a worktree). Router: kNN on `{result['featurizer']}`, "
        f"{result['requests_per_scenario']:,} requests per scenario at concurrency 32 (half at "
        f"1), {result['repetitions']} rounds with the two commits taking turns; medians. "
        "Produced by `python benchmarks/gateway_ab.py`.",
        "",
        "| target | mode | conc. | base req/s | head req/s | head / base (rounds' range) "
        "| base CPU/req | head CPU/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['target']} | {'stream' if r['stream'] else 'plain'} | {r['concurrency']} | "
            f"{r['base_throughput_rps']:,.0f} | {r['head_throughput_rps']:,.0f} | "
            f"{r['ratio_median']:.3f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) | "
            f"{r['base_proxy_cpu_ms_per_request']:.2f} ms | "
            f"{r['head_proxy_cpu_ms_per_request']:.2f} ms |")
    lines += ["", "Where the rounds' range spans 1.00, the difference is within what the "
              "machine's other work does from round to round.", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())

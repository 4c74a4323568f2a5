"""Core evaluation: AIQ of the zero router, the oracle and every core router on llmrouter-bench,
by 5-fold cross-validation and by leave-task-out, plus the wall time of `polyroute evaluate`
end to end (first run, embedding every prompt; second run, from the cache).

    python benchmarks/core_evaluation.py            # everything (~6 min on 2 cores)
    python benchmarks/core_evaluation.py --skip-cli # only the AIQ tables

Writes benchmarks/results/core_evaluation.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, fmt, load_benchmark_data, machine, write_json  # noqa: E402

from polyroute.evaluation import cross_validate, leave_task_out_evaluation  # noqa: E402
from polyroute.evaluation.runner import warm_cache  # noqa: E402

ROUTERS = ["best-single", "random", "cheapest", "knn", "linear", "mlp", "mf", "cluster"]


def time_cli(cache_dir: Path, out_dir: Path) -> dict[str, float]:
    """Wall time of the README's main job, cold (empty embedding cache) then warm."""
    env = dict(os.environ, POLYROUTE_CACHE_DIR=str(cache_dir))
    cmd = [sys.executable, "-m", "polyroute", "evaluate", "--out", str(out_dir)]
    times = {}
    for label in ("first_run_seconds", "cached_run_seconds"):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=ROOT)
        times[label] = round(time.perf_counter() - t0, 1)
    return times


def table(title: str, result: dict) -> list[str]:
    lines = [f"### {title}", "", "| router | AIQ mean | ± std | gain share | best quality |",
             "|---|---:|---:|---:|---:|"]
    rows = [("oracle", result["oracle"]), ("zero router", result["zero_router"])]
    rows += sorted(result["routers"].items(), key=lambda kv: -kv[1]["aiq"])
    for name, r in rows:
        share = r.get("oracle_gain_share")
        lines.append(f"| {name} | {fmt(r['aiq'])} | {fmt(r.get('aiq_std'))} | "
                     f"{fmt(None if share is None else 100 * share, '.1f')}% | "
                     f"{fmt(r.get('best_quality'), '.3f')} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    info = machine()
    outcomes = load_benchmark_data()
    result: dict = {"machine": info, "data": repr(outcomes), "routers": ROUTERS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_cli:
            result["cli"] = time_cli(tmp / "cache", tmp / "run")
        cache = tmp / "cache" / "embeddings.sqlite"
        if not cache.exists():
            warm_cache(outcomes, "minilm", cache)
        t0 = time.perf_counter()
        result["cv5"] = cross_validate(outcomes, ROUTERS, n_splits=5, random_state=0, cache=cache)
        result["cv5_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        result["leave_task_out"] = leave_task_out_evaluation(outcomes, ROUTERS, cache=cache)
        result["leave_task_out_seconds"] = round(time.perf_counter() - t0, 1)
        shutil.rmtree(tmp, ignore_errors=True)
    write_json("core_evaluation.json", result)

    md = ["# Core routers on llmrouter-bench", "",
          f"Data: {outcomes!r}. Featurizer: all-MiniLM-L6-v2. Machine: {info['cpus']} CPUs, "
          f"load {info['load_average_1min_at_start']}, commit {info['commit']}, {info['date']}.",
          "AIQ = mean hull quality over 201 budgets between the cheapest and priciest single "
          "model; gain share = share of the oracle's AIQ gain over the zero router.", ""]
    md += table("5-fold cross-validation (mean ± std over folds)", result["cv5"])
    md += table("Leave-task-out, pooled: each prompt routed by routers that never saw its task "
                 "(± = std of per-task AIQ over the 14 held-out tasks)",
                result["leave_task_out"])
    if "cli" in result:
        md += ["### `polyroute evaluate` end to end (bundled data, 8 routers, 80/20 split)", "",
               f"- first run (embeds 5,489 prompts): {result['cli']['first_run_seconds']} s",
               f"- cached run: {result['cli']['cached_run_seconds']} s", ""]
    (RESULTS / "core_evaluation.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()

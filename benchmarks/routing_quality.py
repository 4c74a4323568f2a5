"""Issue 5: routing quality (AIQ) of every router, 5-fold cross-validation and leave-task-out.

Bundled data (5,489 prompts × 9 models, 14 tasks), all-MiniLM-L6-v2 embeddings (cached). For
each protocol: mean ± std over splits of AIQ and of the share of the oracle's gain over the zero
router; for leave-task-out each held-out task is scored on its own (per-task AIQ, averaged over
the 14 tasks). The std over splits mostly measures how hard each split is, which every router
shares; the paired comparison (per-split difference between two routers on the same split) is the
evidence that one router beats another.

Writes ``benchmarks/results/routing_quality.json`` and ``routing_quality.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, fmt, machine, write_json  # noqa: E402

from polyroute.data import load_bundled  # noqa: E402
from polyroute.evaluation import cross_validate, leave_task_out_evaluation  # noqa: E402

ROUTERS = ("best-single", "knn", "linear", "mlp", "mf", "cluster", "irt", "ensemble", "bandit")
#: The incumbents a new router has to beat.
INCUMBENTS = ("knn", "mlp", "mf")
#: Routers compared (paired, split by split) with the best incumbent.
CHALLENGERS = ("ensemble", "irt", "bandit", "cluster", "linear")


def paired(result: dict, a: str, b: str) -> dict:
    """Per-split AIQ difference ``a − b`` on the same splits: mean, std, wins, t statistic."""
    sa, sb = result["routers"][a]["per_split"], result["routers"][b]["per_split"]
    diff = np.array([sa[k] - sb[k] for k in sa])
    std = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    return {"vs": b, "mean": float(diff.mean()), "std": std, "wins": int((diff > 0).sum()),
            "ties": int((diff == 0).sum()), "splits": len(diff),
            "t": float(diff.mean() / (std / np.sqrt(len(diff)))) if std > 0 else None,
            "per_split": dict(zip(sa, diff.tolist(), strict=True))}


def summarise(result: dict) -> dict:
    """Best incumbent by mean AIQ, and every challenger's paired difference against it."""
    best = max(INCUMBENTS, key=lambda n: result["routers"][n]["aiq"])
    return {"best_incumbent": best,
            "paired": {c: paired(result, c, best) for c in CHALLENGERS
                       if c in result["routers"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="/tmp/emb.sqlite", help="embedding cache (SQLite)")
    parser.add_argument("--routers", default=",".join(ROUTERS))
    parser.add_argument("--protocols", default="cv5,leave_task_out")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    routers = [r for r in args.routers.split(",") if r]
    outcomes = load_bundled()
    out: dict = {"machine": machine(), "data": repr(outcomes), "routers": routers}
    t0 = time.time()

    def step(message: str) -> None:
        if not message.startswith("fitting"):
            print(f"[{time.time() - t0:6.0f} s] {message}", flush=True)

    for protocol in args.protocols.split(","):
        t1 = time.time()
        if protocol == "cv5":
            res = cross_validate(outcomes, routers, n_splits=5, random_state=0,
                                 cache=args.cache, step=step)
        else:
            res = leave_task_out_evaluation(outcomes, routers, cache=args.cache, step=step)
        res["seconds"] = round(time.time() - t1, 1)
        res["comparison"] = summarise(res)
        for part in (res["zero_router"], res["oracle"], *res["routers"].values()):
            part.pop("points", None)  # pooled operating points: bulky, not needed here
        out[protocol] = res
    out["seconds"] = round(time.time() - t0, 1)
    write_json("routing_quality.json", out)
    (RESULTS / "routing_quality.md").write_text(markdown(out))
    print(markdown(out))


def markdown(out: dict) -> str:
    protocols = [p for p in ("cv5", "leave_task_out") if p in out]
    titles = {"cv5": "5-fold CV", "leave_task_out": "leave-task-out (14 tasks)"}
    m = out["machine"]
    lines = ["# Routing quality of every router (issue 5)", "",
             f"Data: {out['data']}. Featurizer: all-MiniLM-L6-v2. Machine: {m['cpus']} CPUs, "
             f"load {m['load_average_1min_at_start']:.1f} at start, commit {m['commit']}, "
             f"{m['date']}; {out['seconds']} s in all.", "",
             "AIQ = mean hull quality over 201 budgets between the cheapest and the priciest "
             "single model on the test prompts (per held-out task for leave-task-out); gain "
             "share = share of the oracle's AIQ gain over the zero router. ± is the std over "
             "splits, which is mostly how hard each split is: see the paired comparison below.",
             "", "| router | " + " | ".join(f"{titles[p]} AIQ | gain share" for p in protocols)
             + " |", "|---|" + "---:|---:|" * len(protocols)]
    names = ["oracle", "zero router", *out["routers"]]
    order = sorted(names, key=lambda n: -_part(out[protocols[0]], n)["aiq"])
    for name in order:
        cells = []
        for p in protocols:
            part = _part(out[p], name)
            share = part.get("oracle_gain_share")
            cells += [f"{part['aiq']:.4f} ± {part['aiq_std']:.4f}",
                      "—" if share is None else f"{100 * share:.1f}%"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired comparison with the best of kNN / MLP / MF", "",
              "Per split: AIQ(router) − AIQ(best incumbent) on the same split; mean ± std over "
              "splits (sample std), splits won, and t = mean / (std / √splits).", "",
              "| protocol | router | vs | mean Δ | std Δ | won | t |",
              "|---|---|---|---:|---:|---:|---:|"]
    for p in protocols:
        comp = out[p]["comparison"]
        for name, d in comp["paired"].items():
            lines.append(f"| {titles[p]} | {name} | {d['vs']} | {d['mean']:+.4f} | "
                         f"{d['std']:.4f} | {d['wins']}/{d['splits']} | {fmt(d['t'], '.1f')} |")
    if "leave_task_out" in out:
        res = out["leave_task_out"]
        tasks = res["splits"]
        shown = [n for n in ("knn", "mlp", "mf", "cluster", "irt", "ensemble", "bandit")
                 if n in res["routers"]]
        lines += ["", "## Leave-task-out, per held-out task (AIQ)", "",
                  "| task | zero router | oracle | " + " | ".join(shown) + " |",
                  "|---|" + "---:|" * (len(shown) + 2)]
        for t in tasks:
            cells = [res["zero_router"]["per_split"][t], res["oracle"]["per_split"][t]]
            cells += [res["routers"][n]["per_split"][t] for n in shown]
            lines.append(f"| {t} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    lines += ["", "## Time", "",
              "| router | " + " | ".join(f"{titles[p]} fit s (mean)" for p in protocols) + " |",
              "|---|" + "---:|" * len(protocols)]
    for name in out["routers"]:
        lines.append(f"| {name} | " + " | ".join(
            fmt(out[p]["routers"][name].get("fit_seconds"), ".1f") for p in protocols) + " |")
    lines.append("| (protocol total) | " + " | ".join(f"{out[p]['seconds']}" for p in protocols)
                 + " |")
    return "\n".join(lines) + "\n"


def _part(result: dict, name: str) -> dict:
    if name == "oracle":
        return result["oracle"]
    if name == "zero router":
        return result["zero_router"]
    return result["routers"][name]


if __name__ == "__main__":
    main()

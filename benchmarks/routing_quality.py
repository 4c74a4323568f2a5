"""Routing quality (AIQ) of every router, by 5-fold cross-validation and by leave-task-out.

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
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, fmt, load_benchmark_data, machine, write_json  # noqa: E402

from polyroute.evaluation import (  # noqa: E402
    cross_validate,
    leave_task_out_evaluation,
    paired_bootstrap,
)

ROUTERS = ("best-single", "knn", "linear", "mlp", "mf", "cluster", "irt", "ensemble", "bandit")
#: Routers also run on the ``minilm-layers`` featurizer (MiniLM's six layers pooled); they are
#: reported as ``<router>@layers``.
LAYER_ROUTERS = ("knn", "mlp", "mf", "cluster", "ensemble")
LAYERS = "@layers"
#: The incumbents a new router has to beat: the published simple routers on the sentence
#: embedding, as they are usually run.
INCUMBENTS = ("knn", "mlp", "mf")
#: Routers compared (paired, split by split) with the best incumbent.
CHALLENGERS = ("ensemble", "irt", "bandit", "cluster", "linear", "knn@layers", "ensemble@layers")


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
    best = max(INCUMBENTS, key=lambda n: headline(result, n)[0])
    out = {"best_incumbent": best,
           "paired": {c: paired(result, c, best) for c in CHALLENGERS if c in result["routers"]}}
    if {"ensemble", "cluster"} <= set(result["routers"]):  # its strongest part, alone
        out["paired"]["ensemble vs cluster"] = paired(result, "ensemble", "cluster")
    if {"ensemble@layers", "knn@layers"} <= set(result["routers"]):  # same features, kNN alone
        out["paired"]["ensemble@layers vs knn@layers"] = paired(result, "ensemble@layers",
                                                                "knn@layers")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", help="embedding cache file (default: polyroute's)")
    parser.add_argument("--routers", default=",".join(ROUTERS))
    parser.add_argument("--layer-routers", default=",".join(LAYER_ROUTERS),
                        help="routers also run on the minilm-layers featurizer ('' for none)")
    parser.add_argument("--protocols", default="cv5,leave_task_out")
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite the .md from the saved .json without running anything")
    parser.add_argument("--resamples", type=int, default=200,
                        help="bootstrap resamples of the pooled leave-task-out comparison")
    parser.add_argument("--bootstrap-only", action="store_true",
                        help="re-run only what the pooled leave-task-out bootstrap needs and "
                             "add it to the saved .json")
    args = parser.parse_args()
    if args.markdown_only:
        out = json.loads((RESULTS / "routing_quality.json").read_text())
        for protocol in ("cv5", "leave_task_out"):
            if protocol in out:
                out[protocol]["comparison"] = summarise(out[protocol])
        (RESULTS / "routing_quality.md").write_text(markdown(out))
        return

    import torch

    torch.set_num_threads(1)
    routers = [r for r in args.routers.split(",") if r]
    layer_routers = [r for r in args.layer_routers.split(",") if r]
    outcomes = load_benchmark_data()
    if args.bootstrap_only:
        out = json.loads((RESULTS / "routing_quality.json").read_text())
        kept = {}
        for featurizer, names in (("minilm", list(INCUMBENTS) + ["ensemble"]),
                                  ("minilm-layers", ["knn", "ensemble"])):
            res = run_protocol("leave_task_out", outcomes, names, featurizer, args.cache,
                               print)
            suffix = "" if featurizer == "minilm" else LAYERS
            kept.update({f"{n}{suffix}": e for n, e in res["estimates"].items()})
            held = res["held_out"]
        out["leave_task_out"]["pooled_bootstrap"] = bootstrap_section(kept, held,
                                                                      args.resamples)
        write_json("routing_quality.json", out)
        (RESULTS / "routing_quality.md").write_text(markdown(out))
        return
    out: dict = {"machine": machine(), "data": repr(outcomes), "routers": routers,
                 "layer_routers": layer_routers}
    t0 = time.time()

    def step(message: str) -> None:
        if not message.startswith("fitting"):
            print(f"[{time.time() - t0:6.0f} s] {message}", flush=True)

    for protocol in args.protocols.split(","):
        t1 = time.time()
        res = run_protocol(protocol, outcomes, routers, "minilm", args.cache, step)
        kept = res.pop("estimates", {})
        held = res.pop("held_out", None)
        if layer_routers:
            layered = run_protocol(protocol, outcomes, layer_routers, "minilm-layers",
                                   args.cache, step)
            kept.update({f"{n}{LAYERS}": e for n, e in layered.pop("estimates", {}).items()})
            layered.pop("held_out", None)
            for name, part in layered["routers"].items():
                res["routers"][f"{name}{LAYERS}"] = part
                if "per_task" in res:
                    for task, row in res["per_task"].items():
                        row[f"{name}{LAYERS}"] = layered["per_task"][task][name]
        if held is not None:
            res["pooled_bootstrap"] = bootstrap_section(kept, held, args.resamples)
        res["seconds"] = round(time.time() - t1, 1)
        res["comparison"] = summarise(res)
        for part in (res["zero_router"], res["oracle"], *res["routers"].values()):
            part.pop("points", None)  # pooled operating points: bulky, not needed here
        out[protocol] = res
    out["seconds"] = round(time.time() - t0, 1)
    write_json("routing_quality.json", out)
    (RESULTS / "routing_quality.md").write_text(markdown(out))
    print(markdown(out))


def run_protocol(protocol: str, outcomes, routers: list[str], featurizer: str, cache,
                 step) -> dict:
    """One protocol (``cv5`` or ``leave_task_out``) for ``routers`` on ``featurizer``; the splits
    are seeded, so runs on two featurizers are paired split by split."""
    if protocol == "cv5":
        return cross_validate(outcomes, routers, featurizer, n_splits=5, random_state=0,
                              cache=cache, step=step)
    return leave_task_out_evaluation(outcomes, routers, featurizer, cache=cache,
                                     keep_estimates=True, step=step)


#: Exploratory runs on the same splits (scripts not kept); AIQ differences against kNN on the
#: sentence embedding unless said otherwise. Written into the report as they are.
DID_NOT_HELP = """\
## What did not help

Measured in exploratory runs on the same folds and held-out tasks (5-fold CV / leave-task-out
scored per task), against kNN on the sentence embedding unless said otherwise:

* More bases in the ensemble (ridge, MLP, MF, IRT next to kNN and clusters): at most +0.001 in
  CV, about −0.005 on held-out tasks, several times slower. An MLP base on the layer features:
  +0.002 CV over `ensemble@layers`, at about 2.5 times the fit time.
* Other stackers: ridge, gradient boosting, similarity-gated weights; task-grouped inner folds;
  a stacker that sees every model's estimates (cross-model logistic): +0.001 CV over
  `ensemble`, −0.002 per task.
* kNN variants: distance weighting, several k stacked (10/40/160), kNN in IRT's supervised topic
  space (0.638 CV, no better than the ensemble).
* Richer text: prompt length as a feature; embedding only the tail of long prompts (clusters
  +0.003, kNN ±0); MiniLM and TF-IDF concatenated (±0.002).
* Layer subsets: layers 3+6 or 2+4+6 instead of all six (CV +0.009 instead of +0.012 for kNN;
  worse per task); the word-embedding layer 0 with the last (CV +0.005, worse per task).
* Guarding the layer features on new tasks: a gate that falls back from `ensemble@layers` to
  `ensemble` when a prompt's nearest training prompts are far (CV +0.008, per task
  +0.011 ± 0.013); a stacker also trained on task-held-out inner folds with an out-of-
  distribution feature (−0.002 per task); projecting the task-mean directions out of the
  embedding (−0.017 CV, −0.010 per task).
* Shrinking the ensemble's estimates towards each model's mean (linear or in logit space): per
  task 0.001–0.005 below the ensemble alone. Bagged k-means clusters (3 sizes × 3 seeds) as the
  ensemble's second base: CV +0.002 over `ensemble`, per task +0.009 ± 0.013 (the ensemble:
  +0.009 ± 0.010).
"""


#: Compared with the best incumbent on the pooled leave-task-out estimates.
BOOTSTRAP_CHALLENGERS = ("ensemble", "knn@layers", "ensemble@layers")


def bootstrap_section(estimates: dict, held, resamples: int) -> dict:
    """Pooled leave-task-out has one AIQ per router and no folds: its spread comes from a paired
    bootstrap over the held-out prompts (both routers scored on the same resample)."""
    from polyroute.evaluation import aiq_of

    pooled = {n: aiq_of(estimates[n], held.quality, held.cost)
              for n in INCUMBENTS if n in estimates}
    best = max(pooled, key=pooled.get)
    return {"best_incumbent": best, "incumbent_aiq": pooled,
            "paired": {c: paired_bootstrap(estimates[c], estimates[best], held.quality,
                                           held.cost, n_resamples=resamples)
                       for c in BOOTSTRAP_CHALLENGERS if c in estimates}}


def headline(result: dict, name: str) -> tuple[float, float]:
    """Mean and std over splits of a router's AIQ: over folds for CV, over held-out tasks (each
    task scored on its own) for leave-task-out."""
    part = _part(result, name)
    return part.get("per_task_mean_aiq", part["aiq"]), part["aiq_std"]


def gain_share(result: dict, name: str) -> float | None:
    """Share of the oracle's gain over the zero router, from the headline means."""
    zero, oracle = headline(result, "zero router")[0], headline(result, "oracle")[0]
    return (headline(result, name)[0] - zero) / (oracle - zero) if oracle > zero else None


def markdown(out: dict) -> str:
    protocols = [p for p in ("cv5", "leave_task_out") if p in out]
    titles = {"cv5": "5-fold CV", "leave_task_out": "leave-task-out (14 tasks)"}
    pooled = "leave_task_out" in out and "per_task_mean_aiq" in out["leave_task_out"]["oracle"]
    m = out["machine"]
    lines = ["# Routing quality of every router", "",
             f"Data: {out['data']}. Featurizer: all-MiniLM-L6-v2's sentence embedding; "
             f"`<router>@layers`: the `minilm-layers` featurizer (mean-pooled hidden states of "
             f"its six layers, concatenated). Machine: {m['cpus']} CPUs, "
             f"load {m['load_average_1min_at_start']:.1f} at start, commit {m['commit']}, "
             f"{m['date']}; {out['seconds']} s in all.", "",
             "AIQ = mean hull quality over 201 budgets between the cheapest and the priciest "
             "single model on the test prompts. 5-fold CV: mean ± std over the folds. "
             "Leave-task-out: each of the 14 tasks is held out in turn and scored on its own "
             "(its own budget range and zero router); mean ± std over the tasks. Gain share = "
             "share of the oracle's AIQ gain over the zero router (from the means). The ± "
             "mostly measures how hard each split is, which all routers share: the paired "
             "comparison below is the evidence."]
    if pooled:
        lines += ["", "*LTO pooled* (the evaluation runner's own headline): all held-out "
                  "estimates scored together, on one budget range, against the single models "
                  "on all prompts; one number, no spread."]
    lines += ["", "| router | " + " | ".join(f"{titles[p]} AIQ | gain share" for p in protocols)
              + (" | LTO pooled AIQ | gain share |" if pooled else " |"),
              "|---|" + "---:|---:|" * (len(protocols) + int(pooled))]
    names = ["oracle", "zero router", *all_routers(out)]
    order = sorted(names, key=lambda n: -headline(out[protocols[0]], n)[0])
    for name in order:
        cells = []
        for p in protocols:
            mean, std = headline(out[p], name)
            share = gain_share(out[p], name)
            cells += [f"{mean:.4f} ± {std:.4f}", "—" if share is None else f"{100 * share:.1f}%"]
        if pooled:
            part = _part(out["leave_task_out"], name)
            share = part.get("oracle_gain_share")
            cells += [f"{part['aiq']:.4f}", "—" if share is None else f"{100 * share:.1f}%"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired comparison with the best of kNN / MLP / MF", "",
              "Per split (fold, or held-out task): AIQ(router) − AIQ(best incumbent) on the same "
              "split; mean ± std over splits (sample std), splits won, and "
              "t = mean / (std / √splits).", "",
              "| protocol | router | vs | mean Δ | std Δ | won | t |",
              "|---|---|---|---:|---:|---:|---:|"]
    for p in protocols:
        comp = out[p]["comparison"]
        for name, d in comp["paired"].items():
            router = name.split(" vs ")[0]
            lines.append(f"| {titles[p]} | {router} | {d['vs']} | {d['mean']:+.4f} | "
                         f"{d['std']:.4f} | {d['wins']}/{d['splits']} | {fmt(d['t'], '.1f')} |")
    boot = out.get("leave_task_out", {}).get("pooled_bootstrap")
    if boot:
        lines += ["", "## Pooled leave-task-out, paired bootstrap", "",
                  "All held-out estimates scored together (the *LTO pooled* column): one AIQ per "
                  "router, so the spread comes from resampling the held-out prompts with "
                  "replacement and scoring both routers on the same resample. Best incumbent "
                  f"on this protocol: {boot['best_incumbent']}.", "",
                  "| router | vs | Δ AIQ | bootstrap mean Δ | bootstrap std Δ | resamples Δ > 0 |",
                  "|---|---|---:|---:|---:|---:|"]
        for name, d in boot["paired"].items():
            lines.append(f"| {name} | {boot['best_incumbent']} | {d['difference']:+.4f} | "
                         f"{d['mean']:+.4f} | {d['std']:.4f} | "
                         f"{100 * d['share_positive']:.0f}% of {d['resamples']} |")
    if "leave_task_out" in out:
        res = out["leave_task_out"]
        shown = [n for n in ("knn", "mlp", "mf", "cluster", "irt", "ensemble", "bandit",
                             "knn@layers", "ensemble@layers") if n in res["routers"]]
        lines += ["", "## Leave-task-out, per held-out task (AIQ)", "",
                  "| task | zero router | oracle | " + " | ".join(shown) + " |",
                  "|---|" + "---:|" * (len(shown) + 2)]
        for t in res["splits"]:
            cells = [res["zero_router"]["per_split"][t], res["oracle"]["per_split"][t]]
            cells += [res["routers"][n]["per_split"][t] for n in shown]
            lines.append(f"| {t} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    lines += ["", "## Time", "",
              "| router | " + " | ".join(f"{titles[p]} fit s (mean)" for p in protocols) + " |",
              "|---|" + "---:|" * len(protocols)]
    for name in all_routers(out):
        lines.append(f"| {name} | " + " | ".join(
            fmt(out[p]["routers"][name].get("fit_seconds"), ".1f") for p in protocols) + " |")
    lines.append("| (protocol total, s) | " + " | ".join(f"{out[p]['seconds']}"
                                                         for p in protocols) + " |")
    return "\n".join(lines) + "\n\n" + DID_NOT_HELP


def all_routers(out: dict) -> list[str]:
    return [*out["routers"], *(f"{r}{LAYERS}" for r in out.get("layer_routers", []))]


def _part(result: dict, name: str) -> dict:
    if name == "oracle":
        return result["oracle"]
    if name == "zero router":
        return result["zero_router"]
    return result["routers"][name]


if __name__ == "__main__":
    main()

"""Faster featurizers against today's default (all-MiniLM-L6-v2 on torch): routing quality and cost.

For every featurizer, with the default router (kNN) on the llmrouter-bench data:

* AIQ by 5-fold cross-validation (the same seeded folds for every featurizer) and by pooled
  leave-task-out (each prompt estimated by a router that never saw its task, all held-out
  estimates scored together);
* the paired difference to ``minilm`` on the same prompts, with a paired bootstrap spread: the
  prompts are resampled (within each fold for CV) and both featurizers' routers are scored on the
  same resample. The rule for a new default: |Δ AIQ| within one bootstrap std in both protocols;
* per-prompt encode latency p50/p99, in-process, for a short prompt, a 2,000-token prompt and a
  batch of 32 short ones, on one and on two ONNX Runtime threads;
* the routing decision in-process: featurize + kNN estimate + trade-off policy, one prompt.

Shorter input: ``minilm-onnx-int8:<window>`` keeps only the head, the tail or both of the
routing text's word pieces (see ``polyroute.features.tokens``).

Embeddings go through the project's embedding cache (``$POLYROUTE_CACHE_DIR``), so a second run
only re-scores. Writes ``benchmarks/results/featurizers.{json,md}``.

    python benchmarks/featurizer_speed_quality.py
    python benchmarks/featurizer_speed_quality.py --markdown-only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS,
    ROOT,
    SHARED_DATA,
    best_round_percentiles,
    fmt,
    load_benchmark_data,
    machine,
    write_json,
)
from gateway_latency import SHORT_PROMPT, long_prompt  # noqa: E402

from polyroute.data import kfold  # noqa: E402
from polyroute.evaluation import aiq_of, leave_task_out_evaluation, paired_bootstrap  # noqa: E402
from polyroute.evaluation.runner import fit_and_estimate  # noqa: E402
from polyroute.evaluation.sweep import DEFAULT_LAMBDAS  # noqa: E402
from polyroute.features import make_featurizer, with_cache  # noqa: E402
from polyroute.policies import TradeoffPolicy  # noqa: E402
from polyroute.policies.base import decisions  # noqa: E402

BASELINE = "minilm"
ROUTER = "knn"
#: ``minilm-onnx`` (fp32) is left out of the quality runs: its embeddings are the torch ones to
#: cosine 1.0000 (see the agreement table), so its routing is minilm's; it is timed.
FEATURIZERS = ("minilm", "minilm-onnx-int8", "minilm-static")
#: Token windows tried on the int8 encoder (word pieces kept of the routing text).
WINDOWS = ("head32", "tail32", "headtail32", "head64", "tail64")
#: Featurizers whose latency is measured (the windows only change the long prompt's cost).
LATENCY = ("minilm", "minilm-onnx", "minilm-onnx-int8", "minilm-onnx-int8:head64",
           "minilm-onnx-int8:tail64",
           "minilm-onnx-int8:tail32", "minilm-static", "minilm-static-tuned+tfidf")
#: The kNN router timed for a featurizer is trained on these embeddings of all prompts when its
#: own are not in the cache: the same space (fp32 ONNX = torch to cosine 1.0000; a window is the
#: int8 encoder on fewer tokens), and a decision's cost depends on the shapes, not the values.
TRAIN_FEATURES_FROM = {"minilm-onnx": "minilm"}
EXPORTS_ID = ("minilm-onnx", "minilm-onnx-int8", "minilm-static")
#: Where the project's real benchmark data sets live (each with a SOURCE.md): beside the
#: checkout, or beside the directory of worktrees.
SHARED = next((p for p in (SHARED_DATA.parent, ROOT.parent.parent / "shared" / "data")
               if p.is_dir()), SHARED_DATA.parent)


# -- quality ----------------------------------------------------------------------------------
def embed_all(outcomes, featurizer: str) -> tuple[np.ndarray, float]:
    inner = make_featurizer(featurizer)
    t0 = time.perf_counter()
    x = with_cache(inner, None).encode(list(outcomes.prompts), progress=True)
    return x, time.perf_counter() - t0


def cv_estimates(outcomes, features: np.ndarray, featurizer: str):
    """kNN estimates of each of the 5 seeded folds' test prompts, and those test outcomes."""
    index = {p: i for i, p in enumerate(outcomes.prompt_ids)}
    folds = []
    for train, test in kfold(outcomes, 5, 0):
        rows = ([index[p] for p in train.prompt_ids], [index[p] for p in test.prompt_ids])
        est, _ = fit_and_estimate(train, test, [ROUTER], featurizer, cache=False,
                                  features=(features[rows[0]], features[rows[1]]))
        folds.append((est[ROUTER], test))
    return folds


def cv_paired(a_folds, b_folds, resamples: int, seed: int = 0) -> dict[str, Any]:
    """Mean over folds of AIQ(a) − AIQ(b), and its spread when every fold's prompts are
    resampled (the same rows for a and b)."""
    policies = [TradeoffPolicy(lam) for lam in DEFAULT_LAMBDAS]
    per_fold = []
    for (ea, test), (eb, _) in zip(a_folds, b_folds, strict=True):
        per_fold.append(aiq_of(ea, test.quality, test.cost, policies)
                        - aiq_of(eb, test.quality, test.cost, policies))
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for i in range(resamples):
        total = 0.0
        for (ea, test), (eb, _) in zip(a_folds, b_folds, strict=True):
            rows = rng.integers(0, test.n_prompts, test.n_prompts)
            q, c = test.quality[rows], test.cost[rows]
            total += aiq_of(ea.subset(rows), q, c, policies) - aiq_of(eb.subset(rows), q, c,
                                                                        policies)
        diffs[i] = total / len(a_folds)
    return {"difference": float(np.mean(per_fold)), "per_fold": per_fold,
            "wins": int(sum(d > 0 for d in per_fold)), "mean": float(diffs.mean()),
            "std": float(diffs.std(ddof=1)), "share_positive": float((diffs > 0).mean()),
            "resamples": resamples}


def quality(outcomes, featurizers: list[str], resamples: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for name in featurizers:
        print(f"[quality] {name}: embedding", flush=True)
        x, seconds = embed_all(outcomes, name)
        folds = cv_estimates(outcomes, x, name)
        lto = leave_task_out_evaluation(outcomes, [ROUTER], name, cache=None,
                                        keep_estimates=True)
        kept[name] = (folds, lto["estimates"][ROUTER], lto["held_out"])
        out[name] = {
            "id": make_featurizer(name).id,
            "embed_all_seconds_with_cache": round(seconds, 1),
            "cv5_aiq": float(np.mean([aiq_of(e, t.quality, t.cost) for e, t in folds])),
            "cv5_aiq_per_fold": [aiq_of(e, t.quality, t.cost) for e, t in folds],
            "lto_pooled_aiq": float(lto["routers"][ROUTER]["aiq"]),
            "lto_per_task_mean_aiq": float(lto["routers"][ROUTER]["per_task_mean_aiq"]),
        }
    base_folds, base_lto, held = kept[BASELINE]
    for name in featurizers:
        if name == BASELINE:
            continue
        print(f"[quality] {name}: paired bootstrap", flush=True)
        folds, lto_est, _ = kept[name]
        cv = cv_paired(folds, base_folds, resamples)
        lto = paired_bootstrap(lto_est, base_lto, held.quality, held.cost,
                               n_resamples=resamples)
        out[name]["vs_minilm"] = {"cv5": cv, "lto_pooled": lto,
                                  "within_spread": bool(abs(cv["difference"]) <= cv["std"]
                                                        and abs(lto["difference"]) <= lto["std"])}
    return out


# -- latency ----------------------------------------------------------------------------------
#: ``--clock cpu`` times each call by the thread's CPU time (``time.thread_time``): on a machine
#: shared with many jobs wall time mostly measures the wait for a core.
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
CLOCK = {"now": time.perf_counter}


def percentiles(fn, n: int) -> dict[str, Any]:
    return best_round_percentiles(fn, n, rounds=3, warm=3, clock=CLOCK["now"])


def latency(outcomes, featurizers: list[str], n: int) -> dict[str, Any]:
    import torch

    from polyroute.features import OnnxMiniLMFeaturizer
    from polyroute.pipeline import Pipeline

    torch.set_num_threads(1)  # one encoder thread: `polyroute serve`'s default on 2 cores
    long_text = long_prompt(list(outcomes.prompts))
    texts32 = [f"{SHORT_PROMPT} ({i})" for i in range(32)]
    policy = TradeoffPolicy(0.5)
    out: dict[str, Any] = {"long_prompt_chars": len(long_text), "samples_per_round": n}
    variants = [(name, None) for name in featurizers]
    variants += [(name, 2) for name in featurizers if name.startswith("minilm-onnx-int8")][:1]
    for name, threads in variants:
        label = name if threads is None else f"{name} (2 threads)"
        print(f"[latency] {label}", flush=True)
        pipe = Pipeline(ROUTER, featurizer=name, cache=False)
        inner = pipe.featurizer  # no cache in front: what a decision pays
        if isinstance(inner, OnnxMiniLMFeaturizer):
            inner.threads = threads or 1  # (the default; set before the session starts)
        if getattr(inner, "needs_fit", False):  # fitted on the prompts (its teacher cached)
            pipe.fit(outcomes)
            inner = pipe.featurizer
        else:
            source = make_featurizer(TRAIN_FEATURES_FROM.get(name, name))
            pipe.fit(outcomes,
                     features=with_cache(source, None).encode(list(outcomes.prompts)))

        def decide(text: str, p=pipe) -> None:
            decisions(p.estimate([text]), policy)

        row: dict[str, Any] = {}
        for key, text in (("short", SHORT_PROMPT), ("2000_tokens", long_text)):
            row[f"encode_{key}"] = percentiles(lambda t=text, f=inner: f.encode([t]), n)
            row[f"decision_{key}"] = percentiles(lambda t=text: decide(t), n)
        batch = percentiles(lambda f=inner: f.encode(texts32), max(10, n // 8))
        row["encode_batch32_short_per_prompt_p50_ms"] = batch["p50_ms"] / 32
        out[label] = row
    return out


# -- agreement with the exact path ------------------------------------------------------------
def agreement(outcomes, names: list[str], sample: dict[str, int]) -> dict[str, Any]:
    """Cosine of each prompt's embedding to its torch MiniLM embedding (cached); for the names
    in ``sample``, on that many seeded prompts only."""
    prompts = list(outcomes.prompts)
    base = with_cache(make_featurizer(BASELINE), None).encode(prompts)
    out = {}
    for name in names:
        rows = np.arange(len(prompts))
        if name in sample:
            rows = np.sort(np.random.default_rng(0).choice(len(prompts), sample[name], False))
        x = with_cache(make_featurizer(name), None).encode([prompts[i] for i in rows])
        y = base[rows]
        if x.shape != y.shape:
            continue
        cos = np.sum(x * y, axis=1)
        out[name] = {"min": float(cos.min()), "p1": float(np.percentile(cos, 1)),
                     "p50": float(np.percentile(cos, 50)), "mean": float(cos.mean()),
                     "prompts": int(len(rows))}
    return out


# -- report -----------------------------------------------------------------------------------
def latency_table(lat: dict[str, Any], lm: dict[str, Any], clock: str) -> list[str]:
    lines = ["", f"## Latency in-process, {clock} (one encoder thread unless said; best of 3 "
             f"rounds of {lat['samples_per_round']} calls by p50)", "",
             f"Measured {lm['date']}, load {lm['load_average_1min_at_start']:.1f} on "
             f"{lm['cpus']} CPUs at the start.", "",
             f"Short prompt: {len(SHORT_PROMPT)} characters; long prompt: "
             f"{lat['long_prompt_chars']:,} characters of bundled prompts (~2,000 tokens by "
             "the cost model's chars/4). Decision = featurize + kNN estimate + trade-off "
             "policy for one prompt. Targets: decision ≤ 3 ms p50 short, ≤ 10 ms long.", "",
             "| featurizer | encode short p50 / p99 | encode 2k p50 / p99 | batch of 32 "
             "short, per prompt | decision short p50 / p99 | decision 2k p50 / p99 |",
             "|---|---:|---:|---:|---:|---:|"]

    def pp(x: dict) -> str:
        return f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f} ms"

    for name, r in lat.items():
        if isinstance(r, dict):
            lines.append(f"| {name} | {pp(r['encode_short'])} | {pp(r['encode_2000_tokens'])} | "
                         f"{r['encode_batch32_short_per_prompt_p50_ms']:.2f} ms | "
                         f"{pp(r['decision_short'])} | {pp(r['decision_2000_tokens'])} |")
    return lines


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    q = res.get("quality", {})
    lines = [
        "# Faster featurizers: routing quality and cost against MiniLM on torch", "",
        f"Data: {res['data']}; router: kNN (the default). Machine: {m['cpus']} CPUs shared with "
        f"other jobs, load {m['load_average_1min_at_start']:.1f} at start and "
        f"{res.get('load_average_1min_at_end', float('nan')):.1f} at the end, commit "
        f"{m['commit']}, {m['date']}; {res.get('seconds', '?')} s in all. {res['second_dataset']}",
        "",
        "Δ = AIQ(featurizer) − AIQ(minilm) on the same prompts. CV: the mean over the 5 seeded "
        "folds of each fold's AIQ; its spread is the std of that mean when each fold's prompts "
        "are resampled (same rows for both). Leave-task-out: all held-out estimates pooled; "
        "spread = std of a paired bootstrap over the held-out prompts. "
        f"{res['resamples']} resamples. **Rule for a new default: |Δ| ≤ 1 bootstrap std in "
        "both protocols.**", "",
        "| featurizer | CV AIQ | Δ CV | ± std | folds won | LTO pooled AIQ | Δ LTO | ± std | "
        "share Δ>0 | within spread |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for name, r in q.items():
        d = r.get("vs_minilm")
        if d is None:
            lines.append(f"| {name} | {fmt(r['cv5_aiq'])} | — | — | — | "
                         f"{fmt(r['lto_pooled_aiq'])} | — | — | — | (baseline) |")
            continue
        cv, lto = d["cv5"], d["lto_pooled"]
        lines.append(
            f"| {name} | {fmt(r['cv5_aiq'])} | {cv['difference']:+.4f} | {fmt(cv['std'])} | "
            f"{cv['wins']}/5 | {fmt(r['lto_pooled_aiq'])} | {lto['difference']:+.4f} | "
            f"{fmt(lto['std'])} | {lto['share_positive']:.2f} | "
            f"{'yes' if d['within_spread'] else 'no'} |")
    lines += ["", "Featurizer ids (the hash is the cached export's / distilled table's "
              "SHA-256, recorded in saved routers):", ""]
    lines += [f"- `{name}`: `{r['id']}`" for name, r in q.items()]
    if res.get("agreement"):
        lines += ["", "## Agreement with the torch embedding (cosine, all prompts)", "",
                  "| featurizer | prompts | min | 1st percentile | median | mean |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, a in res["agreement"].items():
            lines.append(f"| {name} | {a['prompts']} | {a['min']:.4f} | {a['p1']:.4f} | "
                         f"{a['p50']:.4f} | "
                         f"{a['mean']:.4f} |")
    for key, clock in (("latency", "wall time"), ("latency_cpu", "CPU time of the thread")):
        if res.get(key):
            lines += latency_table(res[key], res.get(f"{key}_machine", m), clock)
    if res.get("build_seconds"):
        lines += ["", "## First use in this run (near 0 s: already cached by an earlier run)", ""]
        lines += [f"- `{k}`: {v} s" for k, v in res["build_seconds"].items()]
    if res.get("conclusion"):
        lines += ["", "## Conclusion", "", res["conclusion"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--featurizers", default=",".join(FEATURIZERS))
    parser.add_argument("--windows", default=",".join(WINDOWS),
                        help="token windows tried on minilm-onnx-int8 ('' for none)")
    parser.add_argument("--latency", default=",".join(LATENCY))
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="latency by wall time (default) or by the thread's CPU time; "
                             "the result goes to latency / latency_cpu")
    parser.add_argument("--samples", type=int, default=100, help="calls per latency round")
    parser.add_argument("--only", choices=("quality", "latency"),
                        help="run one part and merge it into the saved .json")
    parser.add_argument("--markdown-only", action="store_true")
    parser.add_argument("--conclusion", help="text for the report's conclusion (kept in .json)")
    args = parser.parse_args()
    if args.markdown_only:
        res = json.loads((RESULTS / "featurizers.json").read_text())
        if args.conclusion:
            res["conclusion"] = args.conclusion
            write_json("featurizers.json", res)
        (RESULTS / "featurizers.md").write_text(markdown(res))
        return
    t0 = time.time()
    outcomes = load_benchmark_data()
    res: dict[str, Any] = {}
    if args.only and (RESULTS / "featurizers.json").is_file():
        res = json.loads((RESULTS / "featurizers.json").read_text())
    res.update({"data": repr(outcomes), "router": ROUTER})
    if args.only != "latency":  # the quality run's machine, load and settings head the report
        res.update({"machine": machine(), "resamples": args.resamples})
    others = sorted(p.name for p in SHARED.iterdir() if p.is_dir()) if SHARED.is_dir() else []
    res["second_dataset"] = (
        f"No second data set: {SHARED} holds {', '.join(others) or 'nothing'}, and "
        f"llmrouter-bench is the upstream copy of the bundled data.")
    names = [n for n in args.featurizers.split(",") if n]
    names += [f"minilm-onnx-int8:{w}" for w in args.windows.split(",") if w]
    build = {}
    for name in EXPORTS_ID:  # first use builds the export / table: timed once, here
        t1 = time.perf_counter()
        _ = make_featurizer(name).id
        build[name] = round(time.perf_counter() - t1, 1)
    res["build_seconds"] = build
    if args.only != "latency":
        res["quality"] = quality(outcomes, names, args.resamples)
        res["agreement"] = agreement(outcomes, ["minilm-onnx"] +
                                     [n for n in names if n != BASELINE], {"minilm-onnx": 300})
        res["quality_seconds"] = round(time.time() - t0, 1)
    if args.only != "quality":
        t1 = time.time()
        CLOCK["now"] = CLOCKS[args.clock]
        key = "latency" if args.clock == "wall" else "latency_cpu"
        res[f"{key}_machine"] = machine()
        res[key] = latency(outcomes, [n for n in args.latency.split(",") if n], args.samples)
        res["latency_seconds"] = round(time.time() - t1, 1)
    if args.only != "latency":
        res["load_average_1min_at_end"] = os.getloadavg()[0]
        res["seconds"] = round(time.time() - t0, 1)
    if args.conclusion:
        res["conclusion"] = args.conclusion
    write_json("featurizers.json", res)
    (RESULTS / "featurizers.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()

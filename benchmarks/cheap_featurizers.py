"""Cheap featurizers (no transformer at request time) against ``minilm``: can one route as well?

The rule is ``featurizer_speed_quality.py``'s: with the default kNN router on the bundled data,
|Δ AIQ| to ``minilm`` within one paired-bootstrap std both in 5-fold CV and in pooled
leave-task-out (LTO). Every candidate is scored on exactly that script's splits, estimates and
bootstrap (``cv_paired``, ``paired_bootstrap``), so the numbers line up with
``results/featurizers.md``.

A *fitted* candidate (TF-IDF, a table trained towards MiniLM) is fitted per split on that
split's training prompts only: in CV on the other four folds, in LTO on the other tasks. The
MiniLM embeddings it learns from are of those training prompts only (the teacher is cached
offline; no test prompt's embedding is ever read by a fit).

Candidates:

* ``static``: today's ``minilm-static`` (model2vec's 256-d PCA + SIF table of MiniLM);
* ``tfidf``: the project's TF-IDF + SVD (LSA) featurizer, fitted per split;
* ``static+tfidf@w``: both, each L2-normalised, TF-IDF weighted by ``w``, concatenated;
* ``static-linear``: the static mean mapped to 384-d by ridge regression onto MiniLM;
* ``tuned[...]``: tokenlearn-style: a per-word-piece 384-d table, initialised by the linear map
  and trained so that the mean of a prompt's pieces has the highest cosine to its MiniLM
  embedding (training prompts only); ``+tfidf@w`` adds TF-IDF as above;
* ``featurizer[NAME]``: a registered fitted featurizer end to end (fit on the split's training
  prompts, encode both parts), e.g. ``featurizer[minilm-static-tuned+tfidf]``, the
  implementation of ``tuned[epochs=5]+tfidf@2``.

Encode cost is the CPU time (``time.thread_time``) of one short prompt, in-process, p50 of the
best of three rounds. Writes ``benchmarks/results/cheap_featurizers.{json,md}``; each run merges
its candidates into the saved .json.

    python benchmarks/cheap_featurizers.py --candidates static,tfidf,static+tfidf@1
    python benchmarks/cheap_featurizers.py --markdown-only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS,
    best_round_percentiles,
    fmt,
    load_benchmark_data,
    machine,
    write_json,
)
from featurizer_speed_quality import ROUTER, cv_paired  # noqa: E402
from gateway_latency import SHORT_PROMPT  # noqa: E402

from polyroute.data import kfold, leave_task_out  # noqa: E402
from polyroute.evaluation import aiq_of, paired_bootstrap  # noqa: E402
from polyroute.evaluation.runner import _stack, fit_and_estimate  # noqa: E402
from polyroute.features import TfidfFeaturizer, make_featurizer, with_cache  # noqa: E402
from polyroute.features.text import focus_text  # noqa: E402
from polyroute.features.tuned import mean_rows, ridge_map, train_table  # noqa: E402
from polyroute.features.tuned import unit_rows as unit  # noqa: E402

NAME = "cheap_featurizers"


# -- splits -----------------------------------------------------------------------------------
class Split:
    """One training/test split of the benchmark, with row indices into the full prompt list."""

    def __init__(self, label: str, outcomes, train, test) -> None:
        index = {p: i for i, p in enumerate(outcomes.prompt_ids)}
        self.label, self.train, self.test = label, train, test
        self.train_rows = np.array([index[p] for p in train.prompt_ids])
        self.test_rows = np.array([index[p] for p in test.prompt_ids])


def make_splits(outcomes, seed: int = 0) -> tuple[list[Split], list[Split]]:
    """The 5 CV folds of ``seed`` (0: the speed/quality benchmark's) and the leave-task-out
    splits."""
    prefix = f"seed{seed}-" if seed else ""
    cv = [Split(f"{prefix}fold{k + 1}", outcomes, tr, te)
          for k, (tr, te) in enumerate(kfold(outcomes, 5, seed))]
    lto = [Split(task, outcomes, tr, te) for task, tr, te in leave_task_out(outcomes)]
    return cv, lto


# -- evaluation -------------------------------------------------------------------------------
#: A candidate's features of one split: (train, test, CPU seconds spent earlier on a cached
#: part of them, e.g. the split's TF-IDF fit reused by several candidates).
Features = Callable[[Split], tuple[np.ndarray, np.ndarray, float]]


def run(outcomes, cv: list[Split], lto: list[Split], features: Features, label: str):
    """kNN estimates per CV fold, pooled over LTO splits and per held-out task (estimates and
    outcomes), and the seconds each split's features took (a fit, for a fitted candidate)."""
    folds, parts, seconds = [], [], []
    for protocol, splits in (("cv", cv), ("lto", lto)):
        for s in splits:
            t0 = time.process_time()
            x_train, x_test, earlier = features(s)
            seconds.append(time.process_time() - t0 + earlier)
            est, _ = fit_and_estimate(s.train, s.test, [ROUTER], "minilm", cache=False,
                                      features=(x_train, x_test))
            (folds if protocol == "cv" else parts).append((est[ROUTER], s))
            print(f"  [{label}] {protocol} {s.label}: {seconds[-1]:.1f} s", flush=True)
    cv_folds = [(e, s.test) for e, s in folds]
    if not parts:
        return cv_folds, None, None, [], seconds
    pooled = _stack([e for e, _ in parts])
    held = outcomes.subset(np.concatenate([s.test_rows for _, s in parts]))
    return cv_folds, pooled, held, [(e, s.test) for e, s in parts], seconds


def score(outcomes, cv, lto, base, features: Features, label: str,
          resamples: int) -> dict[str, Any]:
    folds, pooled, held, parts, seconds = run(outcomes, cv, lto, features, label)
    base_folds, base_pooled, _, base_parts = base
    cvd = cv_paired(folds, base_folds, resamples)
    ltod = paired_bootstrap(pooled, base_pooled, held.quality, held.cost, n_resamples=resamples)
    # Per-task LTO: each held-out task scored on its own (its own budget range), the mean over
    # tasks; spread as for CV, each task's prompts resampled (the same rows for both).
    per_task = cv_paired(parts, base_parts, resamples)
    return {
        "cv5_aiq": float(np.mean([aiq_of(e, t.quality, t.cost) for e, t in folds])),
        "lto_pooled_aiq": aiq_of(pooled, held.quality, held.cost),
        "lto_per_task_mean_aiq": float(np.mean([aiq_of(e, t.quality, t.cost)
                                                for e, t in parts])),
        "vs_minilm": {"cv5": cvd, "lto_pooled": ltod, "lto_per_task": per_task,
                      "within_spread": bool(abs(cvd["difference"]) <= cvd["std"]
                                            and abs(ltod["difference"]) <= ltod["std"]),
                      "within_spread_per_task": None if per_task is None else
                      bool(abs(per_task["difference"]) <= per_task["std"])},
        "features_cpu_seconds_per_split": {"mean": float(np.mean(seconds)),
                                           "max": float(np.max(seconds))},
    }


# -- building blocks --------------------------------------------------------------------------
class Static:
    """The distilled model2vec table and every prompt's word-piece ids (focus text, ≤512)."""

    def __init__(self, prompts: Sequence[str]) -> None:
        f = make_featurizer("minilm-static")
        self.model = f._load()
        self.table = np.asarray(self.model.embedding, dtype=np.float32)
        self.ids = self.tokenize(prompts)

    def tokenize(self, texts: Sequence[str]) -> list[np.ndarray]:
        out = self.model.tokenize([focus_text(t) for t in texts])
        return [np.asarray(i[:512], dtype=np.int64) for i in out]

    mean = staticmethod(mean_rows)


# -- candidates -------------------------------------------------------------------------------
class Candidates:
    """Builds each candidate's per-split feature function and its single-prompt encoder."""

    def __init__(self, outcomes) -> None:
        self.prompts = list(outcomes.prompts)
        self.teacher = with_cache(make_featurizer("minilm"), None).encode(self.prompts)
        self.static = Static(self.prompts)
        self.static_x = unit(Static.mean(self.static.table, self.static.ids))
        self._tfidf: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        self._fixed: dict[str, np.ndarray] = {}

    def texts(self, rows: np.ndarray) -> list[str]:
        return [self.prompts[i] for i in rows]

    def tfidf(self, s: Split) -> tuple[np.ndarray, np.ndarray, float]:
        """The split's TF-IDF features, fitted on its training prompts once, and the CPU
        seconds that took (0 on the first call, which pays them itself)."""
        if s.label in self._tfidf:
            return self._tfidf[s.label]
        t0 = time.process_time()
        f = TfidfFeaturizer().fit(self.texts(s.train_rows))
        x = (f.encode(self.texts(s.train_rows)), f.encode(self.texts(s.test_rows)))
        self._tfidf[s.label] = (*x, time.process_time() - t0)
        return (*x, 0.0)

    def linear_table(self, rows: np.ndarray, alpha: float) -> np.ndarray:
        """The static table mapped to 384-d by the ridge map fitted on ``rows``' prompts."""
        raw = Static.mean(self.static.table, [self.static.ids[i] for i in rows])
        w = ridge_map(raw, self.teacher[rows], alpha)
        return self.static.table @ w[:-1] + w[-1]

    def tuned_table(self, rows: np.ndarray, opts: dict[str, float]) -> np.ndarray:
        init = self.linear_table(rows, opts.get("alpha", 1.0))
        return train_table(init, [self.static.ids[i] for i in rows], self.teacher[rows],
                           epochs=int(opts.get("epochs", 3)), lr=opts.get("lr", 3e-3),
                           seed=int(opts.get("seed", 0)))

    def table_features(self, table: np.ndarray, s: Split) -> tuple[np.ndarray, np.ndarray]:
        ids = self.static.ids
        return (unit(Static.mean(table, [ids[i] for i in s.train_rows])),
                unit(Static.mean(table, [ids[i] for i in s.test_rows])))

    def fixed(self, spec: str) -> np.ndarray:
        """Every prompt's embedding by a featurizer that is not fitted (through the cache)."""
        if spec not in self._fixed:
            self._fixed[spec] = with_cache(make_featurizer(spec), None).encode(self.prompts)
        return self._fixed[spec]

    def features(self, spec: str) -> Features:
        base, _, w = spec.partition("+tfidf@")
        weight = float(w) if w else 0.0
        name, _, arg = base.partition("[")
        opts = ({} if name == "featurizer" else
                {k: float(v) for k, v in (p.split("=") for p in arg.rstrip("]").split(",") if p)})

        def own(s: Split) -> tuple[np.ndarray, np.ndarray, float]:
            if name == "featurizer":  # a registered featurizer, end to end
                f = make_featurizer(arg.rstrip("]"))
                if not getattr(f, "needs_fit", False):  # one embedding of every prompt, cached
                    x = self.fixed(arg.rstrip("]"))
                    return x[s.train_rows], x[s.test_rows], 0.0
                f.fit(self.texts(s.train_rows))
                return f.encode(self.texts(s.train_rows)), f.encode(self.texts(s.test_rows)), 0.0
            if name == "static":
                return self.static_x[s.train_rows], self.static_x[s.test_rows], 0.0
            if name == "tfidf":
                return self.tfidf(s)
            if name == "static-linear":
                return (*self.table_features(self.linear_table(s.train_rows,
                                                               opts.get("alpha", 1.0)), s), 0.0)
            if name == "tuned":
                return (*self.table_features(self.tuned_table(s.train_rows, opts), s), 0.0)
            raise SystemExit(f"unknown candidate {spec!r}")

        def features(s: Split) -> tuple[np.ndarray, np.ndarray, float]:
            a_train, a_test, earlier = own(s)
            if not weight:
                return a_train, a_test, earlier
            t_train, t_test, t_earlier = self.tfidf(s)
            return (np.hstack([unit(a_train), weight * t_train]),
                    np.hstack([unit(a_test), weight * t_test]), earlier + t_earlier)

        return features

    def encoder(self, spec: str) -> Callable[[list[str]], np.ndarray]:
        """What a decision would run for one prompt, fitted on all prompts (its cost does not
        depend on the fitted values): tokenize, look up, mean, normalise (+ TF-IDF)."""
        base, _, w = spec.partition("+tfidf@")
        weight = float(w) if w else 0.0
        name, _, arg = base.partition("[")
        if name == "featurizer":
            f = make_featurizer(arg.rstrip("]"))
            return (f.fit(self.prompts) if getattr(f, "needs_fit", False) else f).encode
        tf = TfidfFeaturizer().fit(self.prompts) if (weight or name == "tfidf") else None
        if name == "tfidf":
            return tf.encode
        table = (self.static.table if name == "static"
                 else np.zeros((len(self.static.table), 384), np.float32))

        def encode(texts: list[str]) -> np.ndarray:
            x = unit(Static.mean(table, self.static.tokenize(texts)))
            return np.hstack([x, weight * tf.encode(texts)]) if tf is not None else x

        return encode


def decision_cost(outcomes, specs: list[str], n: int = 200) -> dict[str, Any]:
    """CPU time of one routing decision in-process (featurize + kNN estimate + trade-off
    policy, the router trained on all prompts), as ``featurizer_speed_quality.py`` times it: a
    wider vector makes the kNN search dearer, which an encode time alone does not show."""
    from polyroute.pipeline import Pipeline
    from polyroute.policies import TradeoffPolicy
    from polyroute.policies.base import decisions

    policy = TradeoffPolicy(0.5)
    out = {}
    for spec in specs:
        print(f"[decision] {spec}", flush=True)
        pipe = Pipeline(ROUTER, featurizer=spec, cache=False)
        inner = pipe.featurizer
        if getattr(inner, "needs_fit", False):
            pipe.fit(outcomes)
        else:
            pipe.fit(outcomes, features=with_cache(inner, None).encode(list(outcomes.prompts)))
        out[spec] = best_round_percentiles(
            lambda p=pipe: decisions(p.estimate([SHORT_PROMPT]), policy), n, rounds=3, warm=5,
            clock=time.thread_time)
        out[spec]["dim"] = int(pipe.featurizer.encode([SHORT_PROMPT]).shape[1])
    return out


def encode_cost(encode: Callable[[list[str]], np.ndarray], n: int = 300) -> dict[str, Any]:
    return best_round_percentiles(lambda: encode([SHORT_PROMPT]), n, rounds=3, warm=5,
                                  clock=time.thread_time)


# -- report -----------------------------------------------------------------------------------
def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        "# Cheap featurizers against MiniLM (torch): routing quality and cost", "",
        f"Data: {res['data']}; router: kNN (the default). Machine: {m['cpus']} CPUs shared with "
        f"other jobs, commit {m['commit']}, {m['date']}. Script: "
        "`benchmarks/cheap_featurizers.py`.", "",
        "Δ = AIQ(candidate) − AIQ(minilm) on the same prompts, with the splits, estimates and "
        "paired bootstrap of `featurizer_speed_quality.py` (CV: mean over the 5 seeded folds, "
        "spread = std of that mean when every fold's prompts are resampled; LTO: all held-out "
        f"estimates pooled, paired bootstrap over them); {res['resamples']} resamples. "
        "**Within spread = |Δ| ≤ 1 std in both protocols.** A fitted candidate is fitted per "
        "split on that split's training prompts only (and, for the tuned tables, on the MiniLM "
        "embeddings of those prompts only). Encode = CPU time of one short prompt "
        f"({len(SHORT_PROMPT)} characters), in-process, p50 of the best of 3 rounds; fit = CPU "
        "seconds of one split's features (fit + encode of its ~4,400 training and ~1,100 test "
        "prompts), mean over the 19 splits.", "",
        f"minilm itself: CV AIQ {fmt(res['baseline']['cv5_aiq'])}, LTO pooled AIQ "
        f"{fmt(res['baseline']['lto_pooled_aiq'])}.", "",
        "| candidate | CV AIQ | Δ CV | ± std | folds won | LTO AIQ | Δ LTO | ± std | within "
        "spread | encode p50 | fit (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|",
    ]
    for name, r in res["candidates"].items():
        cv, lto = r["vs_minilm"]["cv5"], r["vs_minilm"]["lto_pooled"]
        enc = r.get("encode_short_cpu")
        lines.append(
            f"| `{name}` | {fmt(r['cv5_aiq'])} | {cv['difference']:+.4f} | {fmt(cv['std'])} | "
            f"{cv['wins']}/5 | {fmt(r['lto_pooled_aiq'])} | {lto['difference']:+.4f} | "
            f"{fmt(lto['std'])} | {'**yes**' if r['vs_minilm']['within_spread'] else 'no'} | "
            f"{enc['p50_ms']:.3f} ms | {r['features_cpu_seconds_per_split']['mean']:.1f} |")
    with_task = {n: r for n, r in res["candidates"].items()
                 if r["vs_minilm"].get("lto_per_task")}
    if with_task:
        lines += ["", "## Leave-task-out, per task", "",
                  "Each held-out task scored on its own prompts (its own budget range), the mean "
                  "over the 14 tasks; spread = std of that mean when every task's prompts are "
                  "resampled (the same rows for both). minilm: "
                  f"{fmt(res['baseline'].get('lto_per_task_mean_aiq', float('nan')))}.", "",
                  "| candidate | per-task mean AIQ | Δ | ± std | tasks won | within spread |",
                  "|---|---:|---:|---:|---:|:---:|"]
        for name, r in with_task.items():
            t = r["vs_minilm"]["lto_per_task"]
            lines.append(f"| `{name}` | {fmt(r['lto_per_task_mean_aiq'])} | "
                         f"{t['difference']:+.4f} | {fmt(t['std'])} | "
                         f"{t['wins']}/{len(t['per_fold'])} | "
                         f"{'**yes**' if r['vs_minilm']['within_spread_per_task'] else 'no'} |")
    if res.get("decision"):
        dm = res["decision_machine"]
        lines += ["", "## A routing decision in-process, CPU time", "",
                  f"Featurize + kNN estimate + trade-off policy for the short prompt, the router "
                  f"trained on all {res['data'].split('(')[1].split(' ')[0]} prompts; p50 / p99 "
                  f"of the best of 3 rounds. Measured {dm['date']}, load "
                  f"{dm['load_average_1min_at_start']:.1f} at the start.", "",
                  "| featurizer | width | decision p50 / p99 |", "|---|---:|---:|"]
        for name, d in res["decision"].items():
            lines.append(f"| `{name}` | {d['dim']} | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} ms |")
    other = res.get("cv_other_seeds")
    if other:
        seeds = sorted({k for row in other.values() for k in row}, key=int)
        lines += ["", "## CV on the folds of other seeds (robustness; same rule and bootstrap)",
                  "", "Seed 0 is the table above (the speed/quality benchmark's folds). Each "
                  "cell: Δ CV ± std (folds won), **bold** when within one std.", "",
                  "| candidate | " + " | ".join(f"seed {k}" for k in seeds) + " |",
                  "|---|" + "---:|" * len(seeds)]
        for name, row in other.items():
            cells = []
            for k in seeds:
                c = row.get(k)
                text = "—" if c is None else (f"{c['difference']:+.4f} ± {c['std']:.4f} "
                                              f"({c['wins']}/5)")
                cells.append(f"**{text}**" if c and c["within"] else text)
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    if res.get("conclusion"):
        lines += ["", "## Conclusion", "", res["conclusion"]]
    return "\n".join(lines) + "\n"


def robustness(outcomes, cands: Candidates, specs: list[str], seeds: list[int],
               res: dict[str, Any], resamples: int) -> None:
    """Δ CV of each candidate on the folds of other seeds (same rule, same bootstrap): is a
    pass on seed 0's folds a property of the featurizer or of those folds?"""
    table = res.setdefault("cv_other_seeds", {})
    for seed in seeds:
        cv, _ = make_splits(outcomes, seed)
        base, _, _, _, _ = run(outcomes, cv, [], lambda s: (
            cands.teacher[s.train_rows], cands.teacher[s.test_rows], 0.0), "minilm")
        for spec in specs:
            folds, _, _, _, _ = run(outcomes, cv, [], cands.features(spec), spec)
            d = cv_paired(folds, base, resamples)
            table.setdefault(spec, {})[str(seed)] = {
                "difference": d["difference"], "std": d["std"], "wins": d["wins"],
                "within": bool(abs(d["difference"]) <= d["std"])}
            print(f"[{spec}] seed {seed}: CV {d['difference']:+.4f} ± {d['std']:.4f}",
                  flush=True)
            write_json(f"{NAME}.json", res)
            (RESULTS / f"{NAME}.md").write_text(markdown(res))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", default="static,tfidf,static+tfidf@1")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--cv-seeds", default="",
                        help="instead: CV only, on the folds of these seeds (robustness)")
    parser.add_argument("--decision", default="",
                        help="instead: time a routing decision with these registered featurizers")
    parser.add_argument("--markdown-only", action="store_true")
    parser.add_argument("--conclusion")
    args = parser.parse_args()
    path = RESULTS / f"{NAME}.json"
    res: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if args.conclusion:
        res["conclusion"] = args.conclusion
    if args.markdown_only:
        write_json(f"{NAME}.json", res)
        (RESULTS / f"{NAME}.md").write_text(markdown(res))
        return
    outcomes = load_benchmark_data()
    if res.get("resamples", args.resamples) != args.resamples:
        raise SystemExit(f"saved results used {res['resamples']} resamples")
    res.update({"data": repr(outcomes), "router": ROUTER, "resamples": args.resamples})
    res.setdefault("candidates", {})
    if args.decision:
        res.setdefault("decision", {}).update(decision_cost(outcomes, args.decision.split(",")))
        res["decision_machine"] = machine()
        write_json(f"{NAME}.json", res)
        (RESULTS / f"{NAME}.md").write_text(markdown(res))
        return
    cands = Candidates(outcomes)
    specs = [c for c in re.split(r",(?![^\[]*\])", args.candidates) if c]  # not in [...]
    if args.cv_seeds:
        robustness(outcomes, cands, specs, [int(x) for x in args.cv_seeds.split(",")], res,
                   args.resamples)
        return
    res["machine"] = machine()
    cv, lto = make_splits(outcomes)
    print("[minilm] baseline", flush=True)
    base_folds, base_pooled, held, base_parts, _ = run(outcomes, cv, lto, lambda s: (
        cands.teacher[s.train_rows], cands.teacher[s.test_rows], 0.0), "minilm")
    res["baseline"] = {
        "cv5_aiq": float(np.mean([aiq_of(e, t.quality, t.cost) for e, t in base_folds])),
        "lto_pooled_aiq": aiq_of(base_pooled, held.quality, held.cost),
        "lto_per_task_mean_aiq": float(np.mean([aiq_of(e, t.quality, t.cost)
                                                for e, t in base_parts]))}
    for spec in specs:
        print(f"[{spec}]", flush=True)
        t0 = time.time()
        row = score(outcomes, cv, lto, (base_folds, base_pooled, held, base_parts),
                    cands.features(spec),
                    spec, args.resamples)
        row["encode_short_cpu"] = encode_cost(cands.encoder(spec))
        row["wall_seconds"] = round(time.time() - t0, 1)
        res["candidates"][spec] = row
        vs = row["vs_minilm"]
        print(f"[{spec}] CV {vs['cv5']['difference']:+.4f} ± {vs['cv5']['std']:.4f}  LTO "
              f"{vs['lto_pooled']['difference']:+.4f} ± {vs['lto_pooled']['std']:.4f}  "
              f"encode {row['encode_short_cpu']['p50_ms']:.3f} ms", flush=True)
        write_json(f"{NAME}.json", res)
        (RESULTS / f"{NAME}.md").write_text(markdown(res))


if __name__ == "__main__":
    main()

"""Learning from traffic at its real size: training time, peak memory, decision time and the AIQ
cost of approximate search, for kNN and cluster at 10⁴, 10⁵ and 10⁶ outcomes.

**What an outcome is here.** One row of the long format: one (prompt, model, quality) cell, as
a gateway's feedback log or an exported Parquet file holds them. The synthetic prompts are scored
on all nine bundled models (like the bundled data), so N outcomes are ⌈N / 9⌉ prompts: 1,112,
11,112 and 111,112 prompts for the three sizes. The neighbour search runs over prompts.

**How the synthetic outcomes are made** (``synthesise``), from the bundled data's seeded 80/20
train/test split (seed 0); only the *train* part is used, the test part is the evaluation set:

* a synthetic prompt picks a task with the train split's task frequencies, then two distinct
  train prompts ``a`` and ``b`` of that task, uniformly; its text is ``a + "\\n\\n" + b``;
* its score for model j is a Bernoulli draw with rate ``½·(q_aj + q_bj)/2 + ½·r_tj`` where
  ``r_tj`` is model j's recorded mean quality on task t in the train split (unknown parent cells
  take ``r_tj``): half the prompt's own parents, half the recorded per-task rate;
* its cost is the bundled cost rule (SOURCE.md: ceil(chars/4) input tokens, 256 output tokens,
  models.json prices) on the recombined text.

**Features.** Embedding 10⁵ prompts with MiniLM is impossible on this machine, so features are
precomputed: the TF-IDF featurizer (64 LSA dimensions, fitted on the train prompts) embeds the
bundled prompts once; a recombined prompt's vector is the normalised mean of its two parents'
vectors. The test split is embedded by the same fitted TF-IDF.

**Each size runs in its own subprocess** (so ``ru_maxrss`` is that run's peak): write the
outcomes as long-format Parquet with rows shuffled, read them back with the chunked reader
(``polyroute.data.chunked``, 16,384-row batches), join the vectors by prompt id, fit. Reported:
read seconds, fit seconds, peak RSS (and the RSS right after imports, the floor every run pays);
decision time of one prompt (median over single-prompt ``estimate`` calls on test prompts) with
exact search and with the HNSW graph; and AIQ on the bundled test split with each search, k
held at the value chosen at fit so that only the search differs.

Writes ``benchmarks/results/scale.json`` and ``scale.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, fmt, machine, write_json  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
DIM = 64
SEED = 0
DECISIONS = 200
BOOTSTRAP = 200


def _rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ``ru_maxrss``: a child started by
    fork+exec inherits the parent's ``ru_maxrss``, while VmHWM belongs to its own address space."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- data ------------------------------------------------------------------------------------
def bundled_split():
    """(train, test, x_train, x_test) of the bundled data, TF-IDF features fitted on train."""
    from polyroute.data import load_bundled, train_test_split
    from polyroute.features.tfidf import TfidfFeaturizer

    train, test = train_test_split(load_bundled(), 0.2, random_state=SEED)
    tfidf = TfidfFeaturizer(dim=DIM, random_state=SEED).fit(list(train.prompts))
    return train, test, tfidf.encode(list(train.prompts)), tfidf.encode(list(test.prompts))


def synthesise(train, x_train: np.ndarray, n_outcomes: int, seed: int = SEED):
    """(Outcomes, vectors) of ⌈n_outcomes / models⌉ recombined prompts (see the module doc)."""
    from polyroute.data import Outcomes
    from polyroute.data.outcomes import rule_costs
    from polyroute.neighbours import unit_rows

    rng = np.random.default_rng(seed)
    m = len(train.models)
    n = -(-n_outcomes // m)
    tasks = np.asarray(train.tasks)
    names, counts = np.unique(tasks, return_counts=True)
    q = train.quality
    rate = {t: np.nanmean(q[tasks == t], axis=0) for t in names}
    members = {t: np.flatnonzero(tasks == t) for t in names}
    chosen = rng.choice(len(names), size=n, p=counts / counts.sum())
    a = np.empty(n, dtype=np.int64)
    b = np.empty(n, dtype=np.int64)
    for ti, t in enumerate(names):
        rows = np.flatnonzero(chosen == ti)
        pool = members[t]
        a[rows] = pool[rng.integers(0, len(pool), rows.size)]
        shift = rng.integers(1, max(len(pool), 2), rows.size)  # b != a when the pool allows
        b[rows] = pool[(np.searchsorted(pool, a[rows]) + shift) % len(pool)]
    task_rate = np.stack([rate[names[ti]] for ti in chosen])
    qa = np.where(np.isnan(q[a]), task_rate, q[a])
    qb = np.where(np.isnan(q[b]), task_rate, q[b])
    p = np.clip(0.5 * (qa + qb) / 2 + 0.5 * task_rate, 0, 1)
    quality = (rng.random((n, m)) < p).astype(float)
    texts = [train.prompts[i] + "\n\n" + train.prompts[j] for i, j in zip(a, b, strict=True)]
    outcomes = Outcomes(tuple(f"s{i}" for i in range(n)), tuple(texts),
                        tuple(names[chosen].tolist()), train.models, quality,
                        rule_costs(texts, train.models), source=f"synthetic-{n_outcomes}")
    return outcomes, unit_rows(x_train[a] + x_train[b])


def write_parquet(outcomes, path: Path, seed: int = SEED) -> int:
    """Long-format Parquet with the rows shuffled (a reader must join by key)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, m = outcomes.quality.shape
    rows = np.random.default_rng(seed).permutation(n * m)
    i, j = rows // m, rows % m
    pids = np.asarray(outcomes.prompt_ids, dtype=object)
    texts = np.asarray(outcomes.prompts, dtype=object)
    tasks = np.asarray(outcomes.tasks, dtype=object)
    names = np.asarray(outcomes.model_names, dtype=object)
    table = pa.table({"prompt_id": pids[i], "prompt": texts[i], "task": tasks[i],
                      "model": names[j], "quality": outcomes.quality[i, j],
                      "cost": outcomes.cost[i, j]})
    pq.write_table(table, path, row_group_size=65_536)
    return int(n * m)


# -- one size, in a subprocess -------------------------------------------------------------------
def run_size(work: Path, router_name: str, index: str) -> dict:
    """Read, join, fit one router; decision times and test estimates with both searches."""
    from polyroute.data.chunked import load_parquet_chunked
    from polyroute.routers import make_router

    after_imports = _rss_mb()
    t0 = time.perf_counter()
    outcomes = load_parquet_chunked(work / "outcomes.parquet")
    t1 = time.perf_counter()
    ids = np.load(work / "ids.npy")
    vectors = np.load(work / "vectors.npy")
    position = {str(p): r for r, p in enumerate(ids)}
    x = vectors[[position[p] for p in outcomes.prompt_ids]]  # joined by prompt id
    del vectors
    t2 = time.perf_counter()
    router = make_router(router_name, index=index).fit(outcomes, x)
    t3 = time.perf_counter()
    result = {"router": router_name, "index": index, "prompts": outcomes.n_prompts,
              "outcomes": int(np.sum(~np.isnan(outcomes.quality))),
              "read_seconds": t1 - t0, "join_seconds": t2 - t1, "fit_seconds": t3 - t2,
              "rss_after_imports_mb": after_imports, "peak_rss_mb": _rss_mb()}
    result["models"] = list(router.models_)  # the Parquet's first-seen order, not the bundled one
    if router_name == "knn":
        result["k"] = router.k_
    x_test = np.load(work / "x_test.npy")
    # The search the fit built first (no rebuild), then the other one.
    order = ("hnsw", "exact") if router._index.approximate else ("exact", "hnsw")
    indexes = {}
    for search in order:
        if router_name == "cluster" and search == "hnsw":
            continue  # 20 centres: a graph has nothing to win (see the .md)
        router.index = search
        t = time.perf_counter()
        router.estimate(x_test[:1])  # builds the index for this search if needed
        result[f"{search}_index_build_seconds"] = time.perf_counter() - t
        times = []
        for row in x_test[:DECISIONS]:
            t = time.perf_counter()
            router.estimate(row[None, :])
            times.append(time.perf_counter() - t)
        result[f"{search}_decision_ms_median"] = 1000 * float(np.median(times))
        result[f"{search}_decision_ms_p90"] = 1000 * float(np.quantile(times, 0.9))
        np.save(work / f"est_{router_name}_{index}_{search}.npy", router.estimate(x_test).quality)
        indexes[search] = router._index
    if len(indexes) == 2:  # the graph's recall of the exact k nearest, on the test prompts
        queries = x_test / np.maximum(np.linalg.norm(x_test, axis=1, keepdims=True), 1e-12)
        truth, _ = indexes["exact"].search(queries, router.k_)
        found, valid = indexes["hnsw"].search(queries, router.k_)
        hits = [len(set(t.tolist()) & set(f[v].tolist())) for t, f, v in
                zip(truth, found, valid, strict=True)]
        result["hnsw_recall_at_k"] = float(np.sum(hits) / truth.size)
    return result


def run_whole_file(work: Path) -> dict:
    """The whole-file loader on the same Parquet file, for its time and peak memory."""
    from polyroute.data import load_outcomes

    after_imports = _rss_mb()
    t = time.perf_counter()
    outcomes = load_outcomes(work / "outcomes.parquet")
    return {"loader": "load_outcomes", "prompts": outcomes.n_prompts,
            "read_seconds": time.perf_counter() - t, "rss_after_imports_mb": after_imports,
            "peak_rss_mb": _rss_mb()}


def spawn(work: Path, router: str, index: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.run([sys.executable, __file__, "--child", str(work), router, index],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child {router}/{index} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_estimates(quality_est: np.ndarray, train, test, models=None):
    """Estimates on ``test`` whose columns are ``models`` (matched by name), with predicted
    costs as the evaluation runner gives them."""
    from polyroute.routers import Estimates
    from polyroute.routers.cost import CostModel

    cost_model = CostModel.fit(train)
    est = Estimates(models=tuple(models or test.model_names), quality=quality_est)
    est = est.select_models(test.model_names)
    return est.with_cost(cost_model.predict(test.prompts, est.models), cost_model.cost_scale)


def aiq_on_test(quality_est: np.ndarray, train, test, models=None) -> float:
    from polyroute.evaluation.bootstrap import aiq_of

    return aiq_of(test_estimates(quality_est, train, test, models), test.quality, test.cost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--routers", default="knn,cluster")
    parser.add_argument("--exact-fit-at-largest", action="store_true",
                        help="also fit kNN with index=exact at the largest size")
    parser.add_argument("--whole-file-at", default="100000,1000000",
                        help="sizes at which the whole-file loader is also measured")
    parser.add_argument("--markdown-only", action="store_true")
    args = parser.parse_args()
    if args.markdown_only:
        write_markdown(json.loads((RESULTS / "scale.json").read_text()))
        return
    info = machine()
    train, test, x_train, x_test = bundled_split()
    sizes = [int(s) for s in args.sizes.split(",")]
    from polyroute.routers import make_router

    reference = {name: aiq_on_test(make_router(name).fit(train, x_train).estimate(x_test).quality,
                                   train, test) for name in ("best-single", "knn", "cluster")}
    print(f"reference AIQ (trained on the bundled train split): {reference}", file=sys.stderr)
    runs, loads = [], []
    with tempfile.TemporaryDirectory(prefix="polyroute-scale-") as tmp:
        for size in sizes:
            work = Path(tmp) / str(size)
            work.mkdir()
            t = time.perf_counter()
            outcomes, vectors = synthesise(train, x_train, size)
            rows = write_parquet(outcomes, work / "outcomes.parquet")
            np.save(work / "ids.npy", np.asarray(outcomes.prompt_ids))
            np.save(work / "vectors.npy", vectors)
            np.save(work / "x_test.npy", x_test)
            made = time.perf_counter() - t
            del outcomes, vectors
            plan = [(r, "auto") for r in args.routers.split(",")]
            if str(size) in args.whole_file_at.split(","):
                plan.insert(0, ("whole-file", "-"))
            if args.exact_fit_at_largest and size == max(sizes):
                plan.append(("knn", "exact"))
            for router, index in plan:
                print(f"size {size}: {router} index={index}", file=sys.stderr, flush=True)
                res = spawn(work, router, index)
                res.update(size=size, parquet_rows=rows, synthesise_seconds=made)
                if router == "whole-file":
                    loads.append(res)
                    print(json.dumps(res), file=sys.stderr, flush=True)
                    continue
                for search in ("exact", "hnsw"):
                    f = work / f"est_{router}_{index}_{search}.npy"
                    if f.is_file():
                        res[f"{search}_aiq"] = aiq_on_test(np.load(f), train, test, res["models"])
                if "hnsw_aiq" in res:
                    from polyroute.evaluation import paired_bootstrap

                    res["aiq_hnsw_minus_exact"] = res["hnsw_aiq"] - res["exact_aiq"]
                    pair = [test_estimates(np.load(work / f"est_{router}_{index}_{s}.npy"),
                                           train, test, res["models"]) for s in ("hnsw", "exact")]
                    res["aiq_difference_bootstrap"] = paired_bootstrap(
                        *pair, test.quality, test.cost, n_resamples=BOOTSTRAP)
                runs.append(res)
                print(json.dumps(res), file=sys.stderr, flush=True)
    result = {"machine": info, "load_average_1min_at_end": os.getloadavg()[0],
              "featurizer": f"tfidf dim {DIM}, recombined prompts = mean of two parents",
              "train_prompts": train.n_prompts, "test_prompts": test.n_prompts,
              "decisions_timed": DECISIONS, "reference_aiq": reference, "runs": runs,
              "whole_file_loader": loads}
    write_json("scale.json", result)
    write_markdown(result)


def write_markdown(result: dict) -> None:
    from polyroute.neighbours import EXACT_UP_TO

    m = result["machine"]
    lines = [
        "# Learning from traffic at its real size",
        "",
        f"Produced by `benchmarks/scale.py` (commit {m['commit']}, {m['date']}); machine: "
        f"{m['cpus']} CPUs shared with other jobs, load average "
        f"{m['load_average_1min_at_start']:.1f} "
        f"at start and {result['load_average_1min_at_end']:.1f} at the end (other helpers' jobs "
        f"came and went), so absolute times are noisy; compare within a row.",
        "",
        "Synthetic outcomes recombined from the bundled train split "
        f"({result['train_prompts']} prompts; see the script's docstring for exactly how): one "
        "outcome = one (prompt, model) cell, nine models per prompt. Features: "
        f"{result['featurizer']}. Evaluation: the bundled test split "
        f"({result['test_prompts']} prompts). `auto` searches exactly while the training "
        f"vectors hold at most {EXACT_UP_TO:,} floats (rows × dim; here {EXACT_UP_TO // 64:,} "
        "prompts) and through usearch's HNSW graph above.",
        "",
        "AIQ of routers trained on the bundled train split itself (same TF-IDF features), for "
        "scale: " + ", ".join(f"{k} {v:.4f}" for k, v in result["reference_aiq"].items()) + ".",
        "",
        "| outcomes | prompts | router | fit index | read s | fit s "
        "| peak RSS MB (after imports) | k | exact ms/decision | HNSW ms/decision "
        "| HNSW build s | HNSW recall@k | AIQ exact | AIQ HNSW | Δ AIQ (bootstrap std) |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['size']:,} | {r['prompts']:,} | {r['router']} | {r['index']} | "
            f"{r['read_seconds']:.1f} | {r['fit_seconds']:.1f} | {r['peak_rss_mb']:.0f} "
            f"({r['rss_after_imports_mb']:.0f}) | {r.get('k', '—')} | "
            f"{fmt(r.get('exact_decision_ms_median'), '.2f')} | "
            f"{fmt(r.get('hnsw_decision_ms_median'), '.2f')} | "
            f"{fmt(r.get('hnsw_index_build_seconds'), '.1f')} | "
            f"{fmt(r.get('hnsw_recall_at_k'), '.3f')} | {fmt(r.get('exact_aiq'))} | "
            f"{fmt(r.get('hnsw_aiq'))} | {fmt(r.get('aiq_hnsw_minus_exact'), '+.4f')}"
            + (f" ({r['aiq_difference_bootstrap']['std']:.4f})"
               if "aiq_difference_bootstrap" in r else "") + " |")
    lines += [
        "",
        "Columns: *read s* = the chunked Parquet reader (rows shuffled, joined by key); *fit s* = "
        "`router.fit` with the fit index (for kNN at `auto` this includes building the HNSW graph "
        "when the prompts pass the threshold, and choosing k by 5-fold CV on at most 5,000 "
        "held-out prompts); *peak RSS* = VmHWM (peak resident memory) of the run's own "
        "subprocess; *ms/decision* = "
        f"median of {result['decisions_timed']} single-prompt `estimate` calls; *HNSW build s* = "
        "building the graph when the fit did not (also what loading a saved router costs, since "
        "the graph is rebuilt from the saved vectors); *Δ AIQ* = HNSW − exact on the test split "
        "with the same k, and in brackets the std of that difference over 200 paired bootstrap "
        "resamples of the test prompts; *recall@k* = share of the exact k nearest training "
        "prompts the graph returns, over the test prompts. Cluster searches 20 centres: exact "
        "only (a graph over 20 points has nothing to win).",
        "",
    ]
    if result.get("whole_file_loader"):
        chunked = {(r["size"]): r for r in result["runs"] if r["router"] == "knn"
                   and r["index"] == "auto"}
        lines += ["The same Parquet files through the whole-file loader (`load_outcomes`, one "
                  "Python dict per row) against the chunked reader (its read time from the kNN "
                  "run; its peak is that whole run's, fit included):", "",
                  "| outcomes | whole-file read s | whole-file peak RSS MB | chunked read s "
                  "| chunked run peak RSS MB |", "|---:|---:|---:|---:|---:|"]
        for r in result["whole_file_loader"]:
            c = chunked.get(r["size"], {})
            lines.append(f"| {r['size']:,} | {r['read_seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
                         f"{fmt(c.get('read_seconds'), '.1f')} | "
                         f"{fmt(c.get('peak_rss_mb'), '.0f')} |")
        lines.append("")
    (RESULTS / "scale.md").write_text("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        out = (run_whole_file(Path(sys.argv[2])) if sys.argv[3] == "whole-file"
               else run_size(Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
        print(json.dumps(out))
    else:
        main()

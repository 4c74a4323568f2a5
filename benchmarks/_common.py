"""Shared by the benchmark scripts: where the data is and how results are written."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Where results go; POLYROUTE_BENCH_RESULTS redirects a trial run away from the committed ones.
RESULTS = Path(os.environ.get("POLYROUTE_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
SHARED_DATA = ROOT.parent / "shared" / "data" / "llmrouter-bench"


def load_benchmark_data():
    """The llmrouter-bench data from ../shared/data when that checkout is present (the full
    upstream copy), else the copy bundled with polyroute."""
    from polyroute.data import load_bundled, load_outcomes

    if (SHARED_DATA / "prompts.jsonl").is_file():
        return load_outcomes(SHARED_DATA / "prompts.jsonl", SHARED_DATA / "models.json")
    return load_bundled()


def embedded_split(cache: str | None = None, test_size: float = 0.2, seed: int = 0):
    """The benchmark data, its MiniLM embeddings (cached) and a seeded split with the features of
    each part: ``(outcomes, train, test, x_train, x_test)``."""
    from polyroute.data import train_test_split
    from polyroute.features import CachedFeaturizer, make_featurizer

    outcomes = load_benchmark_data()
    features = CachedFeaturizer(make_featurizer("minilm"), cache).encode(list(outcomes.prompts))
    train, test = train_test_split(outcomes, test_size, random_state=seed)
    index = {p: i for i, p in enumerate(outcomes.prompt_ids)}
    return (outcomes, train, test, features[[index[p] for p in train.prompt_ids]],
            features[[index[p] for p in test.prompt_ids]])


def seeded_prompts(data: Any, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct prompts of ``data`` (an Outcomes), drawn with ``seed``: the same ones in
    every benchmark that asks for as many."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [data.prompts[i] for i in rng.choice(data.n_prompts, n, replace=False)]


def split_router(seed: int = 0, cache: str | None = None, test_size: float = 0.2):
    """The benchmark data, a seeded split and a kNN router on MiniLM embeddings (cached) fitted
    on its training part: ``(outcomes, train, test, pipeline)``."""
    from polyroute import Pipeline
    from polyroute.data import train_test_split

    outcomes = load_benchmark_data()
    train, test = train_test_split(outcomes, test_size, random_state=seed)
    return outcomes, train, test, Pipeline("knn", featurizer="minilm", cache=cache).fit(train)


def machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        load = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count(), "load_average_1min_at_start": load, "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def machine_at_end(m: dict[str, Any]) -> dict[str, Any]:
    """``m`` (from :func:`machine`) with the load average at the end of the run added."""
    return {**m, "load_average_1min_at_end": os.getloadavg()[0]}


def machine_sentence(m: dict[str, Any]) -> str:
    """The results file's opening words on where and when: CPUs, load at start and end, Python,
    commit and date (``m`` from :func:`machine_at_end`)."""
    return (f"Machine: {m['cpus']} CPUs shared with other work, load average "
            f"{m['load_average_1min_at_start']:.2f} at start and "
            f"{m['load_average_1min_at_end']:.2f} at the end; Python {m['python']}, commit "
            f"{m['commit']}, {m['date']}.")


def best_round_percentiles(fn, n: int, rounds: int = 3, warm: int = 5,
                           clock=time.perf_counter) -> dict[str, Any]:
    """p50/p99 ms of ``fn()`` in the best of ``rounds`` rounds of ``n`` calls (by p50), after
    ``warm`` untimed calls: other work on a shared machine only ever slows a round down, so the
    best round is the closest to the code's own cost. ``clock=time.thread_time`` measures the
    calling thread's CPU time instead of wall time (waiting for a busy core not counted)."""
    import numpy as np

    for _ in range(warm):
        fn()
    results = []
    for _ in range(rounds):
        times = []
        for _ in range(n):
            start = clock()
            fn()
            times.append((clock() - start) * 1000)
        results.append({"p50_ms": float(np.percentile(times, 50)),
                        "p99_ms": float(np.percentile(times, 99))})
    best = min(results, key=lambda r: r["p50_ms"])
    return {**best, "rounds_p50_ms": [r["p50_ms"] for r in results]}


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=1))
    return path


def fmt(value: float | None, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)

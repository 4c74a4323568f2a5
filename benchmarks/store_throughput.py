"""Does the store change what one gateway replica serves? SQLite against PostgreSQL, one run.

Loopback only, bounded, stops by itself. A stand-in backend that answers instantly (the one
``gateway_latency.py`` uses), one ``polyroute serve`` process, and this load generator. Routing
is pinned — every request names a backend, so no router runs — which leaves the store as the
only thing that differs between the setups: each request still writes its start row and its
finished record (row, attempts, spend) through the store's writer. Prompts are real ones from
the bundled llmrouter-bench data.

For each setup, non-streamed and streamed requests at concurrency 1 and 16; the setups take
turns (SQLite, PostgreSQL, SQLite, PostgreSQL…) so slow moments of a shared machine fall on
both. Reported per cell: throughput and client-side p50/p99 (the median over the rounds, with
the throughput's range; every round is in the JSON), and the rows the store holds afterwards
(it must equal the requests sent).

Where the other rows are: "PostgreSQL + Redis" for one and for three replicas are measured by
``benchmarks/shared_state.py`` (``benchmarks/results/shared_state.md``), beside SQLite with and
without Redis, in one run; the results here point there.

Usage::

    python benchmarks/store_throughput.py           # ~5 minutes
    python benchmarks/store_throughput.py --quick   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402
from gateway_latency import free_port, gateway_config, run_load, wait_http  # noqa: E402

POSTGRES = os.environ.get("POLYROUTE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

#: Setups measured: name → the kind of store its one replica uses.
SETUPS = {"SQLite (one replica)": "sqlite", "PostgreSQL (one replica)": "postgresql"}
#: Setups the issue asks for whose parts are not built yet (rows kept in the results).
NOT_YET = ("PostgreSQL + Redis (one replica)", "PostgreSQL + Redis (three replicas)")


def train_router(path: Path) -> list[str]:
    """A small TF-IDF kNN router on the bundled data (needed to start; pinned requests never
    consult it); returns the model names."""
    from polyroute.data import load_bundled
    from polyroute.pipeline import Pipeline

    data = load_bundled()
    Pipeline("knn", featurizer="tfidf", cache=False).fit(data).save(path)
    return list(data.model_names)


def make_schema() -> tuple[str, str]:
    import psycopg

    schema = f"polyroute_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema, f"{POSTGRES}?options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def count_rows(store: str | Path) -> int:
    from polyroute.store import open_store

    s = open_store(store if isinstance(store, str) else Path(store), readonly=True)
    try:
        return len(s.recent_requests(10**7))
    finally:
        s.close()


def queued_writes(gateway_url: str) -> float:
    import httpx
    from gateway_latency import KEY

    text = httpx.get(f"{gateway_url}/metrics", headers={"authorization": f"Bearer {KEY}"},
                     timeout=5).text
    for line in text.splitlines():
        if line.startswith("polyroute_store_queued_writes "):
            return float(line.split()[1])
    return 0.0


def wait_drained(gateway_url: str, timeout: float = 120) -> float:
    """Seconds until the store's write queue is empty (what a run left to commit)."""
    start = time.perf_counter()
    while queued_writes(gateway_url) > 0:
        if time.perf_counter() - start > timeout:
            raise SystemExit("the store's write queue did not drain")
        time.sleep(0.01)
    return time.perf_counter() - start


class Gateway:
    """One ``polyroute serve`` process on a store."""

    def __init__(self, tmp: Path, router: Path, backend_url: str, models: list[str],
                 store: str | Path, env: dict[str, str]) -> None:
        import yaml

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = gateway_config(router, backend_url, models, tmp / "unused.sqlite", self.port)
        config["store"] = store if isinstance(store, str) else {"path": str(store)}
        path = tmp / f"gateway-{self.port}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.proc = subprocess.Popen([sys.executable, "-m", "polyroute", "serve", "--config",
                                      str(path)], env=env)
        wait_http(f"{self.url}/healthz", self.proc, "the gateway")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests (smoke run)")
    parser.add_argument("--rounds", type=int, default=5, help="turns per setup (default: 5)")
    args = parser.parse_args()
    n1, n16, rounds = (30, 100, 1) if args.quick else (100, 400, args.rounds)

    from polyroute.data import load_bundled

    data = load_bundled()
    rng = np.random.default_rng(0)
    prompts = [data.prompts[i] for i in rng.choice(data.n_prompts, 1000, replace=False)]
    tmp = Path(tempfile.mkdtemp(prefix="polyroute-store-bench-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print("training a small router (only to start the gateway)...", flush=True)
    models = train_router(tmp / "router")
    result: dict[str, Any] = {"machine": machine(), "requests": {"concurrency_1": n1,
                                                                 "concurrency_16": n16},
                              "rounds": rounds, "pinned_model": models[0]}
    backend_port = free_port()
    backend = subprocess.Popen([sys.executable, str(Path(__file__).parent / "gateway_latency.py"),
                                "--serve-backend", str(backend_port)], env=env)
    schema = None
    gateways: dict[str, Gateway] = {}
    stores: dict[str, str | Path] = {}
    runs: list[dict[str, Any]] = []
    try:
        backend_url = f"http://127.0.0.1:{backend_port}"
        wait_http(backend_url, backend, "the stand-in backend")
        for name, kind in SETUPS.items():
            if kind == "postgresql":
                schema, url = make_schema()
                stores[name] = url
            else:
                stores[name] = tmp / "state.sqlite"
            gateways[name] = Gateway(tmp, tmp / "router", backend_url, models, stores[name],
                                     env)
        sent = dict.fromkeys(SETUPS, 0)
        for rnd in range(rounds):
            for stream in (False, True):
                for concurrency, n in ((1, n1), (16, n16)):
                    for name, gw in gateways.items():
                        warmup = min(50, n // 4)
                        r = asyncio.run(run_load(gw.url, models[0], prompts, stream=stream,
                                                 concurrency=concurrency, n=n, warmup=warmup))
                        r.pop("client_ms")
                        r["drain_s"] = wait_drained(gw.url)
                        r.update(setup=name, round=rnd)
                        sent[name] += n + warmup
                        runs.append(r)
                        print(f"  round {rnd} {'stream' if stream else 'plain ':6s} "
                              f"c={concurrency:<2d} {name:26s} {r['throughput_rps']:7.1f} req/s "
                              f"p50 {r['p50_ms']:6.2f} ms p99 {r['p99_ms']:6.2f} ms", flush=True)
    finally:
        for gw in gateways.values():
            gw.stop()  # each flushes its store on the way out
        if backend.poll() is None:
            backend.send_signal(signal.SIGTERM)
            backend.wait(30)
        try:
            if len(runs) == rounds * 4 * len(SETUPS):
                result["rows"] = {name: {"sent": sent[name], "rows": count_rows(stores[name])}
                                  for name in SETUPS}
        finally:
            if schema is not None:
                drop_schema(schema)
    result["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]
    result["runs"] = runs
    result["summary"] = summarise(runs)
    result["not_measured_yet"] = list(NOT_YET)
    path = write_json("store_throughput.json", result)
    write_markdown(result, path.with_suffix(".md"))
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for stream in (False, True):
        for concurrency in (1, 16):
            for name in SETUPS:
                group = [r for r in runs if r["setup"] == name and r["stream"] == stream
                         and r["concurrency"] == concurrency]
                out.append({"setup": name, "stream": stream, "concurrency": concurrency,
                            **{k: float(np.median([r[k] for r in group]))
                               for k in ("throughput_rps", "p50_ms", "p99_ms", "drain_s")},
                            "throughput_range": [min(r["throughput_rps"] for r in group),
                                                 max(r["throughput_rps"] for r in group)]})
    return out


def write_markdown(result: dict[str, Any], path: Path) -> None:
    m = result["machine"]
    lines = [
        "# Store throughput: one gateway replica on SQLite and on PostgreSQL",
        "",
        f"Machine: {m['cpus']} CPUs shared with other work, load average "
        f"{m['load_average_1min_at_start']:.2f} at start and "
        f"{m['load_average_1min_at_end']:.2f} at the end; Python {m['python']}, commit "
        f"{m['commit']}, {m['date']}. Loopback: a stand-in backend that answers at once, one "
        f"`polyroute serve` per setup, the load generator of `gateway_latency.py`; every "
        f"request names the backend `{result['pinned_model']}` (no routing), so the store is "
        f"what differs. PostgreSQL 127.0.0.1:5432, a fresh schema. Requests per cell: "
        f"{result['requests']['concurrency_1']} at concurrency 1, "
        f"{result['requests']['concurrency_16']} at 16, after a warm-up; median of "
        f"{result['rounds']} round(s), the setups taking turns. Produced by "
        f"`python benchmarks/store_throughput.py`.",
        "",
        "| setup | stream | concurrency | throughput req/s | (rounds' range) | p50 ms | p99 ms | "
        "queue drain s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["summary"]:
        lo, hi = r["throughput_range"]
        lines.append(f"| {r['setup']} | {'yes' if r['stream'] else 'no'} | {r['concurrency']} | "
                     f"{r['throughput_rps']:.1f} | {lo:.0f}–{hi:.0f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['drain_s']:.2f} |")
    for name in result["not_measured_yet"]:
        lines.append(f"| {name} | | | see shared_state.md | | | | |")
    lines += ["", "*Queue drain*: seconds after a cell's last answer until the store's writer "
              "had committed every record (`polyroute_store_queued_writes` back to 0): the "
              "answers never wait for the store, so a writer slower than the traffic shows "
              "here, not in the latency, until its queue reaches `store.queue_limit`.", "",
              "Reading it: where two setups' ranges overlap, the difference is within what the "
              "machine's other work does to one setup from round to round (see the load above).",
              "",
              "Rows afterwards (every request sent, warm-ups included, has exactly one row):", "",
              "| setup | sent | rows |", "|---|---:|---:|"]
    for name, c in result["rows"].items():
        lines.append(f"| {name} | {c['sent']} | {c['rows']} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())

"""What sharing spend, rate limits and breakers in Redis costs, and whether limits hold.

Loopback only, bounded, stops by itself. A stand-in backend (tests/gateway/standin.py, a child
process, answering at once), gateway replicas (``polyroute serve`` processes, each with its own
SQLite store or all sharing one PostgreSQL schema; a TF-IDF kNN router on the bundled
llmrouter-bench outcomes) and this asyncio + httpx load generator share the machine. Prompts
are real ones from the bundled data; requests name a backend (no routing), so the numbers are
the gateway's proxy path plus the state path.

In one run, side by side, with a key that has a spend limit and rpm/tpm limits too large to be
reached (every request runs the spend check, the reservation, the rate-limit admission and the
settle, none is refused):

* one replica on SQLite, per-process state (no ``shared:``);
* one replica on SQLite, state in Redis (``shared: redis://127.0.0.1:6379/0``);
* three replicas, a SQLite file each, sharing Redis, requests round-robin;
* one replica on PostgreSQL + Redis, and three replicas sharing one PostgreSQL and one Redis
  (a fresh schema on 127.0.0.1:5432; left out, said so, where no PostgreSQL answers);

then the limit check: three replicas, a key limited to about 40 answers' cost, concurrent
requests well past it;
counts of sent, acknowledged, rows (over the three stores), duplicates and over-limit spend
against one request's ceiling.

Usage::

    python benchmarks/shared_state.py            # ~3 min on 2 CPUs
    python benchmarks/shared_state.py --quick    # fewer requests
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402
from gateway_latency import free_port, serve_backend, wait_http  # noqa: E402

KEY = "pr-benchmark-shared-key"
TIGHT_KEY = "pr-benchmark-tight-key"
REDIS = os.environ.get("POLYROUTE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
#: The tight key's limit, in requests' worth: about this many are served, the rest refused.
TIGHT_REQUESTS = 40
MAX_TOKENS = 64


def train_router(path: Path) -> list[str]:
    """A TF-IDF kNN router on 600 bundled prompts (seconds); its model names."""
    from polyroute import Pipeline
    from polyroute.data import load_bundled

    data = load_bundled()
    rows = np.random.default_rng(0).choice(data.n_prompts, 600, replace=False)
    Pipeline("knn", featurizer="tfidf", cache=False).fit(data.subset(rows)).save(path)
    return list(data.model_names)


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_schema() -> tuple[str, str] | None:
    """(schema, store URL) of a fresh schema on the machine's PostgreSQL, or None if absent."""
    try:
        import psycopg

        schema = f"polyroute_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception:  # no server, no driver: the PostgreSQL rows are skipped, said so
        return None
    return schema, f"{POSTGRES}?options=-csearch_path%3D{schema}"


def drop_postgres_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Replicas:
    """``n`` gateway processes with one config but port and store; stopped with SIGTERM."""

    def __init__(self, tmp: Path, n: int, config: dict[str, Any],
                 store_url: str | None = None) -> None:
        """``store_url``: one store every replica shares (PostgreSQL); else a SQLite file each."""
        self.procs: list[subprocess.Popen] = []
        self.urls: list[str] = []
        self.stores: list[Path | str] = []
        for i in range(n):
            port = free_port()
            store: Path | str = store_url or tmp / f"r{i}-{uuid.uuid4().hex[:6]}.sqlite"
            cfg = {**config, "store": store_url or {"path": str(store)},
                   "server": {"host": "127.0.0.1", "port": port, "log_level": "warning"}}
            path = tmp / f"r{i}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
            self.procs.append(subprocess.Popen([sys.executable, "-m", "polyroute", "serve",
                                                "--config", str(path)], env=env))
            self.urls.append(f"http://127.0.0.1:{port}")
            self.stores.append(store)
        for url, proc in zip(self.urls, self.procs, strict=True):
            wait_http(f"{url}/healthz", proc, "a gateway replica")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(60)

    def rows(self) -> list:
        from polyroute.store import open_store

        out = []
        for where in dict.fromkeys(self.stores):  # a shared store is read once
            store = open_store(where, readonly=True)
            out += store.recent_requests(limit=10_000_000)
            store.close()
        return out


async def load(urls: list[str], key: str, model: str, prompts: list[str], *, n: int,
               concurrency: int, warmup: int = 0) -> dict[str, Any]:
    """``n`` requests, ``concurrency`` at a time, round-robin over ``urls``."""
    import httpx

    clients = [httpx.AsyncClient(base_url=u, timeout=60,
                                 headers={"authorization": f"Bearer {key}"}) for u in urls]
    results: list[tuple[float, int, str | None]] = []

    async def worker(queue: asyncio.Queue, sink: list) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = {"model": model, "max_tokens": MAX_TOKENS,
                    "messages": [{"role": "user", "content": prompts[i % len(prompts)]}]}
            start = time.perf_counter()
            r = await clients[i % len(clients)].post("/v1/chat/completions", json=body)
            sink.append((time.perf_counter() - start, r.status_code,
                         r.headers.get("x-polyroute-request-id")))

    async def batch(count: int, sink: list) -> float:
        queue: asyncio.Queue = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        start = time.perf_counter()
        await asyncio.gather(*(worker(queue, sink) for _ in range(concurrency)))
        return time.perf_counter() - start

    try:
        await batch(warmup, [])
        wall = await batch(n, results)
    finally:
        for c in clients:
            await c.aclose()
    ok = np.array([r[0] for r in results if r[1] == 200]) * 1000
    return {"requests": n, "concurrency": concurrency, "replicas": len(urls),
            "statuses": dict(Counter(r[1] for r in results)),
            "p50_ms": float(np.percentile(ok, 50)) if len(ok) else None,
            "p99_ms": float(np.percentile(ok, 99)) if len(ok) else None,
            "throughput_rps": n / wall, "ids": [r[2] for r in results if r[1] == 200]}


def time_ledgers(n: int) -> dict[str, Any]:
    """One request's state path alone, in-process, sequential: the spend check, a reservation
    and its settle (the settle's script awaited), per-process against Redis."""
    from polyroute.config import KeyConfig, SharedConfig
    from polyroute.gateway.shared import LocalSpend
    from polyroute.gateway.shared.redis_client import connect
    from polyroute.gateway.shared.redis_spend import RedisSpend

    class Store:
        def spend_by_key(self, since: float | None = None) -> dict[str, float]:
            return {}

        def flush(self, timeout: float | None = None) -> None:
            pass

    key = KeyConfig(id="bench", sha256="0" * 64, spend_limit=1e9, spend_period="total")
    config = SharedConfig(url=REDIS, prefix=f"bench-ledger-{uuid.uuid4().hex[:8]}")

    async def run(ledger) -> list[float]:
        await ledger.load(Store())
        times = []
        for _ in range(n):
            start = time.perf_counter()
            await ledger.check(key)
            held = await ledger.reserve(key, 0.001)
            ledger.settle(held, key.id, 0.0005)
            if isinstance(ledger, RedisSpend):
                await asyncio.gather(*ledger._tasks)
            times.append((time.perf_counter() - start) * 1e6)
        await ledger.close()
        return times

    async def redis_run() -> list[float]:
        ledger = RedisSpend([key], config)
        client = connect(config)
        ledger.open(client)
        try:
            return await run(ledger)
        finally:
            keys = [k async for k in client.scan_iter(match=f"{config.prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    out = {}
    for name, times in (("per-process", asyncio.run(run(LocalSpend([key])))),
                        ("redis", asyncio.run(redis_run()))):
        arr = np.array(times)
        out[name] = {"calls": n, "p50_us": float(np.percentile(arr, 50)),
                     "p99_us": float(np.percentile(arr, 99))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve-backend", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backend:  # the child process: the stand-in backend on that port
        serve_backend(args.serve_backend)
        return
    n, conc = (200, 8) if args.quick else (1000, 16)
    from polyroute.data import load_bundled
    from polyroute.gateway import hash_key
    from polyroute.gateway.stages.reserve import prompt_tokens

    info = machine()
    ledgers = time_ledgers(500 if args.quick else 3000)
    print(f"state path alone: {ledgers}", flush=True)
    data = load_bundled()
    prompts = [p for p in data.prompts if len(p) < 2000][:500]
    tmp = Path(tempfile.mkdtemp(prefix="pr-shared-bench-"))
    models = train_router(tmp / "router")
    backend_port = free_port()
    backend = subprocess.Popen([sys.executable, __file__, "--serve-backend", str(backend_port)])
    backend_url = f"http://127.0.0.1:{backend_port}"
    price = {m.name: m for m in data.models}
    pinned = max(models, key=lambda m: price[m].output_price_per_mtok)
    # What the stand-in's answers cost (its usage: 10 prompt + 20 completion tokens).
    answer_cost = (10 * price[pinned].input_price_per_mtok
                   + 20 * price[pinned].output_price_per_mtok) / 1e6
    tight_limit = TIGHT_REQUESTS * answer_cost
    base = {
        "backends": [{"name": m, "base_url": f"{backend_url}/v1",
                      "input_price_per_mtok": price[m].input_price_per_mtok,
                      "output_price_per_mtok": price[m].output_price_per_mtok,
                      "max_concurrency": 64, "timeout": 30} for m in models],
        "router": {"path": str(tmp / "router")},
        "keys": [{"id": "bench", "sha256": hash_key(KEY), "spend_limit": 1e6,
                  "spend_period": "total", "rpm": 10_000_000, "tpm": 1_000_000_000},
                 {"id": "tight", "sha256": hash_key(TIGHT_KEY), "spend_limit": tight_limit,
                  "spend_period": "total"}],
    }
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    pg = postgres_schema()
    setups = [("one replica, SQLite, per-process state", 1, None, None),
              ("one replica, SQLite, state in Redis", 1,
               {"url": REDIS, "prefix": prefix + "-1"}, None),
              ("three replicas, SQLite each, state in Redis", 3,
               {"url": REDIS, "prefix": prefix + "-3"}, None)]
    if pg is not None:
        setups += [("one replica, PostgreSQL + Redis", 1,
                    {"url": REDIS, "prefix": prefix + "-p1"}, pg[1]),
                   ("three replicas, one PostgreSQL + Redis", 3,
                    {"url": REDIS, "prefix": prefix + "-p3"}, pg[1])]
    else:
        print("no PostgreSQL at 127.0.0.1:5432: its rows are left out", flush=True)
    runs = []
    # Any HTTP answer (the stand-in has no GET route: 404) means it is up.
    wait_http(f"{backend_url}/v1/models", backend, "the stand-in")
    for label, count, shared, store_url in setups:
        config = {**base, **({"shared": shared} if shared else {})}
        replicas = Replicas(tmp, count, config, store_url)
        try:
            result = asyncio.run(load(replicas.urls, KEY, pinned, prompts, n=n,
                                      concurrency=conc, warmup=n // 10))
        finally:
            replicas.stop()
        result.pop("ids")
        runs.append({"setup": label, **result})
        print(f"{label}: {result['throughput_rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
              f"p99 {result['p99_ms']:.1f} ms, {result['statuses']}", flush=True)

    # The limit check: three replicas, a tight key, concurrent requests well past its limit.
    replicas = Replicas(tmp, 3, {**base, "shared": {"url": REDIS, "prefix": prefix + "-lim"}})
    try:
        tight = asyncio.run(load(replicas.urls, TIGHT_KEY, pinned, prompts, n=n // 2,
                                 concurrency=conc))
    finally:
        replicas.stop()
    rows = [r for r in replicas.rows() if r.key_id == "tight"]
    ids = Counter(r.id for r in rows)
    acked = set(tight.pop("ids"))
    spent = sum(r.cost for r in rows)
    pinned_price = price[pinned]
    longest = max(prompt_tokens({"messages": [{"role": "user", "content": p}]})
                  for p in prompts)
    ceiling = (longest * pinned_price.input_price_per_mtok
               + MAX_TOKENS * pinned_price.output_price_per_mtok) / 1e6
    limit = {"replicas": 3, "sent": tight["requests"], "acknowledged": len(acked),
             "refused_429": tight["statuses"].get(429, 0), "rows": len(rows),
             "acknowledged_with_one_ok_row": sum(1 for r in rows if r.id in acked
                                                 and r.status == "ok"),
             "duplicates": sum(c - 1 for c in ids.values()), "limit": tight_limit,
             "spent": spent, "over_limit": max(0.0, spent - tight_limit),
             "one_request_ceiling": ceiling}
    print(f"limit check: {limit}", flush=True)
    backend.terminate()
    backend.wait(30)
    if pg is not None:
        drop_postgres_schema(pg[0])
    info["load_average_1min_at_end"] = os.getloadavg()[0]
    result = {"machine": info, "ledger_path": ledgers, "requests_per_setup": n,
              "concurrency": conc,
              "pinned_backend": pinned, "runs": runs, "limit_check": limit}
    write_json("shared_state.json", result)
    write_markdown(result)


def write_markdown(result: dict[str, Any]) -> None:
    from _common import RESULTS

    m, lim = result["machine"], result["limit_check"]
    lines = [
        "# Shared state: the cost of Redis, and limits over replicas", "",
        f"Machine: {m['cpus']} CPUs, load average {m['load_average_1min_at_start']:.2f} at start "
        f"and {m['load_average_1min_at_end']:.2f} at the end (other work shares the CPUs), "
        f"Python {m['python']}, commit {m['commit']}, {m['date']}. Loopback; stand-in backend "
        f"answering at once; client, replicas, Redis and backend share the CPUs. "
        f"{result['requests_per_setup']} requests per setup at concurrency "
        f"{result['concurrency']} (after a warm-up), real prompts from the bundled data, backend "
        f"`{result['pinned_backend']}` named (no routing), a key whose spend and rate limits "
        f"are checked on every request but never reached. The store is a SQLite file per "
        f"replica, or one PostgreSQL schema all replicas share, as the setup says. Produced by "
        f"`python benchmarks/shared_state.py`.", "",
        "| setup | req/s | p50 | p99 | statuses |", "|---|---:|---:|---:|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['setup']} | {r['throughput_rps']:.0f} | {r['p50_ms']:.1f} ms | "
                     f"{r['p99_ms']:.1f} ms | {r['statuses']} |")
    led = result["ledger_path"]
    lines += [
        "", "## The state path alone", "",
        f"In-process, sequential, {led['redis']['calls']} times: spend check + reservation + "
        f"settle of one request (what a limited key's request adds), Redis on loopback.", "",
        "| ledger | p50 | p99 |", "|---|---:|---:|",
        *(f"| {name} | {v['p50_us']:.0f} µs | {v['p99_us']:.0f} µs |" for name, v in led.items()),
        "",
        "Three round trips to Redis per limited request (check, reserve, settle: the check "
        "stays before routing so a spent key costs no routing work); on a loaded 2-CPU machine "
        "the whole-gateway numbers above are dominated by the gateway's own Python work "
        "(three replicas share the same two CPUs, so they cannot add throughput here; an "
        "earlier run of the first three rows, on a busier machine, gave 62 / 73 / 68 req/s).",
        "", "## The limit over three replicas", "",
        f"A key limited to ${lim['limit']:.5f} (about {TIGHT_REQUESTS} answers), "
        f"{lim['sent']} concurrent requests round-robin over three replicas sharing Redis:", "",
        "| sent | acknowledged | refused (429) | rows | acknowledged with one ok row | "
        "duplicates | spent | over the limit | one request's ceiling |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {lim['sent']} | {lim['acknowledged']} | {lim['refused_429']} | {lim['rows']} | "
        f"{lim['acknowledged_with_one_ok_row']} | {lim['duplicates']} | ${lim['spent']:.5f} | "
        f"${lim['over_limit']:.5f} | ${lim['one_request_ceiling']:.5f} |", "",
        "The bound (gateway/spend.py, held over replicas by the Redis ledger): at most one "
        "request's ceiling over the limit. The killed-replica and fault-injection version of "
        "this check is tests/gateway/test_replicas_chaos.py."]
    (RESULTS / "shared_state.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

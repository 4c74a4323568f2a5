"""What a routed request's writes cost the SQLite store's writer thread, with and without a
savepoint around each job.

A routed request writes two jobs: its start row, then its record (the request's row, its nine
candidates, its attempt, its spend). The writer runs the jobs waiting when it wakes in one
transaction; until this change each job also ran inside ``SAVEPOINT job … RELEASE job`` so a
failing job could be rolled back alone. Both are measured side by side in one run on the same
records: *savepoints* wraps each job in those two statements (what the writer did before),
*group only* is today's writer (a failure replays the group one job per transaction instead).

Two ways of submitting: *burst* (every request's jobs queued at once: large groups) and *paced*
(one request's two jobs, then a 1 ms pause: groups of one or two, as a gateway at a few hundred
requests a second gives). CPU of the writer thread alone (``pthread_getcpuclockid``), per
request; repetitions interleaved, medians. Rows written are counted to show both write the same.

Usage::

    python benchmarks/store_writer.py            # 3,000 requests, 5 repetitions
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    machine,
    machine_at_end,
    machine_sentence,
    seeded_prompts,
    write_json,
)

from polyroute.data import load_bundled  # noqa: E402
from polyroute.gateway.ids import request_id  # noqa: E402
from polyroute.store.records import Attempt, Candidate, RequestRecord, RequestStart  # noqa: E402
from polyroute.store.sqlite import SQLiteStore  # noqa: E402


def with_savepoint(job):
    """``job`` inside its own savepoint, as the writer ran every job before this change."""
    def wrapped(conn: sqlite3.Connection) -> Any:
        conn.execute("SAVEPOINT job")
        result = job(conn)
        conn.execute("RELEASE job")
        return result
    return wrapped


def run(mode: str, pacing: str, prompts: list[str], models: list[str], n: int,
        folder: Path) -> dict[str, Any]:
    store = SQLiteStore(folder / f"{mode}-{pacing}-{time.monotonic_ns()}.db")
    writer = store._writer
    if mode == "savepoints":
        submit = writer.submit
        writer.submit = lambda job, **kw: submit(with_savepoint(job), **kw)  # type: ignore
    clock = time.pthread_getcpuclockid(writer._thread.ident)
    writer.flush(10)
    start = time.clock_gettime(clock)
    for i in range(n):
        rid, ts = request_id(), time.time()
        store.start_request(RequestStart(rid, ts, None, "polyroute-auto", None, False))
        store.finish_request(RequestRecord(
            rid, ts, "ok", 200, requested_model="polyroute-auto", policy="max-quality",
            prompt=prompts[i % len(prompts)],
            candidates=tuple(Candidate(m, 0.5 + 0.01 * j, 1e-4 * j)
                             for j, m in enumerate(models)),
            attempts=(Attempt(models[i % len(models)], "ok", 200, None, 1.3),),
            chosen=models[i % len(models)], latency_ms=2.1, decision_ms=0.4, ttfb_ms=1.9,
            prompt_tokens=len(prompts[i % len(prompts)]) // 4, completion_tokens=12,
            cost=1e-4, cost_source="usage"))
        if pacing == "paced":
            time.sleep(0.001)
    writer.flush(60)
    cpu = time.clock_gettime(clock) - start
    with sqlite3.connect(store.location) as conn:
        rows = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("requests", "candidates", "attempts")}
    store.close()
    return {"mode": mode, "pacing": pacing, "requests": n,
            "writer_cpu_ms_per_request": 1000 * cpu / n, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    data = load_bundled()
    prompts = seeded_prompts(data, 2000)
    models = list(data.model_names)
    result: dict[str, Any] = {"machine": machine(), "requests": args.requests,
                              "repetitions": args.reps, "models": len(models), "runs": []}
    with tempfile.TemporaryDirectory(prefix="polyroute-store-writer-") as tmp:
        for rep in range(args.reps):
            for pacing in ("burst", "paced"):
                for mode in ("savepoints", "group only"):
                    r = run(mode, pacing, prompts, models, args.requests, Path(tmp))
                    r["rep"] = rep
                    result["runs"].append(r)
                    print(f"rep {rep} {pacing:5s} {mode:10s} "
                          f"{r['writer_cpu_ms_per_request']:.4f} ms/request", flush=True)
    result["machine"] = machine_at_end(result["machine"])
    write_json("store_writer.json", result)
    write_markdown(result, RESULTS / "store_writer.md")
    return 0


def write_markdown(result: dict[str, Any], path: Path) -> None:
    m = result["machine"]
    lines = [
        "# The store writer's CPU per routed request: a savepoint per job or not",
        "",
        machine_sentence(m) + " SQLite store "
        f"(WAL, synchronous NORMAL) as the gateway opens it; {result['requests']:,} requests "
        f"per cell, each a start row and a record with {result['models']} candidates, one "
        f"attempt and its spend, prompts drawn from the bundled data; {result['repetitions']} "
        "repetitions interleaved, medians. CPU of the writer thread alone. Produced by "
        "`python benchmarks/store_writer.py`.",
        "",
        "| submitted | savepoint per job (before) | one transaction per group (now) | saved |",
        "|---|---:|---:|---:|",
    ]
    for pacing in ("burst", "paced"):
        med = {mode: statistics.median(r["writer_cpu_ms_per_request"] for r in result["runs"]
                                       if r["mode"] == mode and r["pacing"] == pacing)
               for mode in ("savepoints", "group only")}
        saved = 1 - med["group only"] / med["savepoints"]
        lines.append(f"| {pacing} | {med['savepoints']:.3f} ms | {med['group only']:.3f} ms | "
                     f"{saved:.0%} |")
    rows = {tuple(sorted(r["rows"].items())) for r in result["runs"]}
    lines += ["", "Rows written per cell (every cell alike): " + "; ".join(
        ", ".join(f"{t} {c:,}" for t, c in r) for r in rows) + ".", "",
        "*burst*: every request's jobs queued at once (groups of up to 64 jobs); *paced*: one "
        "request's two jobs, then a 1 ms pause (groups of one or two).", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())

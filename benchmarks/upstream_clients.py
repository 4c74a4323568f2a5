"""httpx or aiohttp for the gateway's upstream calls: the client's own CPU per request.

The gateway's one upstream call per request is made with ``httpx.AsyncClient``. This measures
what that costs the gateway's process against ``aiohttp.ClientSession`` doing the same thing:
the loopback stand-in backend (tests/gateway/standin.py, answering instantly, 10 chunks when
streaming) on CPU 1, this client on CPU 0 under uvloop (as the gateway runs), the same request
body, non-streaming (read the whole answer) and streaming (read every chunk), at concurrency 1
and 32. Reported: requests per second and the client process's CPU time per request (what the
gateway would spend), the median of ``--reps`` interleaved rounds.

aiohttp is not a project dependency; give ``--aiohttp-path`` a directory it was installed into
(``pip install --target DIR aiohttp``) or install it in the environment. Without it, only httpx
is measured.

Usage::

    python benchmarks/upstream_clients.py --aiohttp-path /tmp/aiohttp-pkgs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402
from gateway_latency import free_port, wait_http  # noqa: E402

BODY = (b'{"model":"m","messages":[{"role":"user","content":"What is the capital of Australia?'
        b' Answer with one word."}]}')


async def run_httpx(url: str, stream: bool, concurrency: int, n: int) -> float:
    import httpx

    body = BODY[:-1] + (b',"stream":true}' if stream else b"}")
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    clients = [httpx.AsyncClient(limits=limits, trust_env=False,
                                 headers={"content-type": "application/json"})
               for _ in range(-(-concurrency // 8))]
    done = 0

    async def worker(i: int) -> None:
        nonlocal done
        client = clients[i % len(clients)]
        while done < n:
            done += 1
            request = client.build_request("POST", url, content=body)
            response = await client.send(request, stream=True)
            try:
                async for _ in (response.aiter_raw() if stream else response.aiter_bytes()):
                    pass
            finally:
                await response.aclose()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall = time.perf_counter() - started
    for c in clients:
        await c.aclose()
    return wall


async def run_aiohttp(url: str, stream: bool, concurrency: int, n: int) -> float:
    import aiohttp

    body = BODY[:-1] + (b',"stream":true}' if stream else b"}")
    connector = aiohttp.TCPConnector(limit=max(8, concurrency))
    session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                    headers={"content-type": "application/json"},
                                    auto_decompress=False)
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < n:
            done += 1
            async with session.post(url, data=body) as response:
                if stream:
                    async for _ in response.content.iter_any():
                        pass
                else:
                    await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    await session.close()
    return wall


def measure(client: str, url: str, stream: bool, concurrency: int, n: int) -> dict[str, Any]:
    import uvloop

    fn = run_httpx if client == "httpx" else run_aiohttp
    uvloop.run(fn(url, stream, concurrency, 20))  # warm-up (connections, imports)
    cpu = time.process_time()
    wall = uvloop.run(fn(url, stream, concurrency, n))
    cpu = time.process_time() - cpu
    return {"client": client, "stream": stream, "concurrency": concurrency, "requests": n,
            "throughput_rps": n / wall, "cpu_ms_per_request": cpu * 1000 / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aiohttp-path", type=Path, help="directory aiohttp is installed in")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.aiohttp_path is not None:
        sys.path.append(str(args.aiohttp_path))  # after the venv: its packages win
    clients = ["httpx"]
    try:
        import aiohttp
    except ImportError:
        print("aiohttp is not importable: measuring httpx only", flush=True)
        aiohttp = None
    else:
        clients.append("aiohttp")
    import httpx

    os.sched_setaffinity(0, {0})
    port = free_port()
    here = Path(__file__).resolve().parent
    backend = subprocess.Popen(["taskset", "-c", "1", sys.executable,
                                str(here / "proxy_speed.py"), "--serve-backend", str(port)])
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    runs: list[dict[str, Any]] = []
    try:
        wait_http(f"http://127.0.0.1:{port}", backend, "the stand-in backend")
        for rep in range(args.reps):
            for stream in (False, True):
                for conc in (1, 32):
                    for client in clients:
                        r = measure(client, url, stream, conc, args.requests)
                        r["repetition"] = rep
                        runs.append(r)
                        print(f"  rep {rep} {'stream' if stream else 'plain ':6s} c={conc:<2d} "
                              f"{client:8s} {r['throughput_rps']:7.0f} req/s  "
                              f"{r['cpu_ms_per_request']:.3f} ms CPU/req", flush=True)
    finally:
        backend.terminate()
        backend.wait(30)
    summary = []
    for stream in (False, True):
        for conc in (1, 32):
            for client in clients:
                rs = [r for r in runs if (r["client"], r["stream"], r["concurrency"]) ==
                      (client, stream, conc)]
                summary.append({"client": client, "stream": stream, "concurrency": conc,
                                "throughput_rps": statistics.median(r["throughput_rps"]
                                                                    for r in rs),
                                "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"]
                                                                        for r in rs)})
    m = machine()
    m["load_average_1min_at_end"] = os.getloadavg()[0]
    versions = {"httpx": httpx.__version__,
                "aiohttp": aiohttp.__version__ if aiohttp is not None else None}
    result = {"machine": m, "versions": versions, "requests": args.requests,
              "repetitions": args.reps, "runs": runs, "summary": summary}
    path = write_json("upstream_clients.json", result)
    lines = ["# Upstream client: httpx or aiohttp", "",
             f"Machine: {m['cpus']} CPUs shared with other work, load average "
             f"{m['load_average_1min_at_start']:.2f} → {m['load_average_1min_at_end']:.2f}; "
             f"commit {m['commit']}, {m['date']}. httpx {versions['httpx']}, aiohttp "
             f"{versions['aiohttp'] or 'not installed'}; uvloop; client on CPU 0, the stand-in "
             f"on CPU 1; {args.requests} requests per scenario, median of {args.reps} "
             f"interleaved rounds. Produced by `python benchmarks/upstream_clients.py`.", "",
             "| mode | conc. | client | req/s | client CPU per request |",
             "|---|---:|---|---:|---:|"]
    for s in summary:
        lines.append(f"| {'stream' if s['stream'] else 'plain'} | {s['concurrency']} | "
                     f"{s['client']} | {s['throughput_rps']:.0f} | "
                     f"{s['cpu_ms_per_request']:.3f} ms |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(path.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

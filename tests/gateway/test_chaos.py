"""A bounded chaos run of the real ``polyroute serve`` process.

Three loopback stand-in backends inject faults at random (seeded): 500s whose body echoes the
backend key they were sent, 429s, connection resets, hangs past the timeout, truncated streams,
garbage streams and non-completion 200s. Concurrent clients drive the gateway through three
phases — steady load, a SIGTERM in the middle of load, a SIGKILL in the middle of load — and the
store is then checked as a whole:

* every client got an answer or a clear error (an OpenAI-shaped body or error event; a transport
  error only when the gateway was killed under it);
* no row is missing, duplicated or left ``in_progress``;
* the store's spend table equals the sum of the recorded request costs;
* no backend credential appears in any response, log line or row.

The counts are printed (``pytest -s``) and, with ``POLYROUTE_CHAOS_REPORT=path``, written as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from gateway_world import KEY, MATH_PROMPT, POETRY_PROMPT, wait_for
from standin import ServerThread, request_body

from polyroute.gateway import hash_key

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SECRETS = {name: f"sk-chaos-{name}-{'x' * 8}{i}7f3a9c2e51" for i, name in
           enumerate(("alpha", "beta", "gamma"))}
#: Fault → weight. Each backend draws from its own seeded generator.
FAULTS = {"ok": 50, "500_echo": 8, "429": 6, "reset": 6, "hang": 5, "truncate": 8,
          "garbage": 6, "not_completion": 5, "redirect": 3}
PROMPTS = (MATH_PROMPT, POETRY_PROMPT, "Compute the integral of x^3 from 0 to 2.",
           "Compose a haiku about a lantern in the rain.")
BACKEND_TIMEOUT = 1.0


class ChaosBackend:
    """An OpenAI-compatible ASGI app that misbehaves at random, reproducibly (per-app seed)."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.faults: Counter[str] = Counter()

    def _draw(self) -> str:
        with self.lock:
            fault = self.rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
            self.faults[fault] += 1
            return fault

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:  # the lifespan, answered
            return
        request = json.loads(body)
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        fault = self._draw()
        stream = bool(request.get("stream"))
        if fault == "500_echo":
            await _send(send, 500, json.dumps({"error": {
                "message": f"upstream rejected the call made with '{auth}' "
                           f"(key {auth.removeprefix('Bearer ')})", "type": "server_error"}}))
        elif fault == "429":
            await _send(send, 429, '{"error": {"message": "slow down", "type": "rate_limit"}}')
        elif fault == "redirect":
            await _send(send, 302, "", [(b"location", b"http://127.0.0.1:9/elsewhere")])
        elif fault == "reset":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream" if stream else
                                     b"application/json"), (b"content-length", b"5000")]})
            await send({"type": "http.response.body", "body": b'{"id": "x", ',
                        "more_body": True})
            raise ConnectionResetError("chaos: connection reset")
        elif fault == "hang":
            await _wait_disconnect(receive, BACKEND_TIMEOUT * 3)
        elif fault == "not_completion":
            await _send(send, 200, json.dumps({"choices": None, "note": "not a completion"})
                        if not stream else "data: {\"choices\": 5}\n\ndata: [DONE]\n\n",
                        content_type=b"text/event-stream" if stream else b"application/json")
        elif stream:
            await self._stream(send, request, fault)
        else:
            await _send(send, 200, json.dumps(_completion(self.name, request)))

    async def _stream(self, send: Any, request: dict, fault: str) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        base = {"id": f"chatcmpl-{self.name}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": request.get("model")}

        async def event(payload: bytes) -> None:
            await send({"type": "http.response.body", "body": b"data: " + payload + b"\n\n",
                        "more_body": True})

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            return json.dumps({**base, "choices": [{"index": 0, "delta": delta,
                                                    "finish_reason": finish}]}).encode()

        if fault == "garbage":
            await event(b"<html>this is not json</html>")
            await event(b"{\"truncated\": ")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await event(chunk({"role": "assistant"}))
        for i in range(4):
            await event(chunk({"content": f"{self.name} part {i} "}))
            if fault == "truncate" and i == 1:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
        await event(chunk({}, "stop"))
        if (request.get("stream_options") or {}).get("include_usage"):
            await event(json.dumps({**base, "choices": [], "usage": {
                "prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}}).encode())
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n",
                    "more_body": False})


def _completion(name: str, request: dict) -> dict:
    return {"id": f"chatcmpl-{name}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": f"{name} answers"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}


async def _send(send: Any, status: int, text: str, extra: list | None = None,
                content_type: bytes = b"application/json") -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def _wait_disconnect(receive: Any, seconds: float) -> None:
    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(gone(), seconds)
    except TimeoutError:
        pass


# -- the gateway process -------------------------------------------------------------------------
class Gateway:
    def __init__(self, tmp: Path, router_dir: Path, urls: dict[str, str]) -> None:
        with socket_free() as port:
            self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "gateway.log"
        config = {
            "backends": [{"name": name, "base_url": f"{url}/v1", "api_key_env": f"KEY_{name}",
                          "input_price_per_mtok": 1.0 + i, "output_price_per_mtok": 2.0 + i,
                          "timeout": BACKEND_TIMEOUT, "max_concurrency": 16}
                         for i, (name, url) in enumerate(urls.items())],
            "router": {"path": str(router_dir)},
            "keys": [{"id": "one", "sha256": hash_key(KEY)}],
            "store": {"path": str(tmp / "state.sqlite")},
            "breaker": {"failure_threshold": 3, "cooldown": 0.3, "max_cooldown": 1.0},
            "server": {"port": self.port, "log_level": "info", "shutdown_timeout": 5},
        }
        self.config = tmp / "gateway.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
               **{f"KEY_{n}": s for n, s in SECRETS.items()}}
        log = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "polyroute", "serve", "--config",
                                      str(self.config)], env=env, stdout=log, stderr=log)
        log.close()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the gateway exited: {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code < 600
            except httpx.TransportError:
                return False

        wait_for(ready, "the gateway to start", timeout=90)

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(60)

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class socket_free:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# -- one client request, classified -------------------------------------------------------------
def _one(url: str, i: int, killed: threading.Event) -> dict[str, Any]:
    stream = i % 2 == 1
    body = {"model": "polyroute-auto", "stream": stream,
            "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]}
    out: dict[str, Any] = {"i": i, "stream": stream, "id": None, "status": None,
                           "kind": None, "text": ""}
    try:
        with httpx.Client(timeout=30) as client, client.stream(
                "POST", f"{url}/v1/chat/completions", json=body,
                headers={"authorization": f"Bearer {KEY}"}) as r:
            out["status"] = r.status_code
            out["id"] = r.headers.get("x-polyroute-request-id")
            out["headers"] = dict(r.headers)
            raw = r.read().decode("utf-8", "replace")
            out["text"] = raw
    except httpx.TransportError as exc:
        out["kind"] = "transport_error_after_kill" if killed.is_set() else "transport_error"
        out["error"] = repr(exc)
        return out
    out["kind"] = _classify(out["status"], raw, stream,
                            (out["headers"].get("content-type") or ""))
    return out


def _classify(status: int, raw: str, stream: bool, ctype: str) -> str:
    """``answer`` / ``error`` for a well-formed outcome, ``BROKEN: why`` otherwise."""
    if status != 200 or "text/event-stream" not in ctype:
        try:
            obj = json.loads(raw)
        except ValueError:
            return f"BROKEN: status {status} with a non-JSON body {raw[:80]!r}"
        if status == 200:
            ok = isinstance(obj.get("choices"), list) and obj["choices"]
            return "answer" if ok else f"BROKEN: 200 without choices {raw[:80]!r}"
        err = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str) and \
                isinstance(err.get("type"), str):
            return f"error_{status}"
        return f"BROKEN: status {status} with a body that is not an OpenAI error {raw[:80]!r}"
    events = [line[5:].strip() for line in raw.splitlines() if line.startswith("data:")]
    if not events:
        return "BROKEN: an empty stream"
    for payload in events:
        if payload == "[DONE]":
            continue
        try:
            obj = json.loads(payload)
        except ValueError:
            return f"BROKEN: a non-JSON event reached the client {payload[:80]!r}"
        if "error" in obj:
            return "stream_error_event"
        if not isinstance(obj.get("choices"), list):
            return f"BROKEN: an event without choices reached the client {payload[:80]!r}"
    if events[-1] != "[DONE]":
        return "BROKEN: a stream ended without [DONE] and without an error event"
    return "answer"


def _load(url: str, start: int, n: int, killed: threading.Event,
          workers: int = 12) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda i: _one(url, i, killed), range(start, start + n)))


# -- the test -----------------------------------------------------------------------------------
def test_chaos(tmp_path: Path, router_dir: Path) -> None:
    apps = {name: ChaosBackend(name, seed) for seed, name in enumerate(("alpha", "beta",
                                                                        "gamma"), start=11)}
    servers = {name: ServerThread(app).start() for name, app in apps.items()}
    gw = Gateway(tmp_path, router_dir, {n: s.url for n, s in servers.items()})
    results: list[dict[str, Any]] = []
    exits: dict[str, int] = {}
    try:
        # Phase 1: steady load.
        gw.start()
        never = threading.Event()
        results += _load(gw.url, 0, 240, never)
        # Phase 2: SIGTERM while load is in flight; in-flight requests must still end cleanly.
        box: dict[str, list] = {}
        loader = threading.Thread(target=lambda: box.setdefault("r", _load(gw.url, 1000, 60,
                                                                           never)))
        loader.start()
        time.sleep(0.5)
        exits["sigterm"] = gw.signal(signal.SIGTERM)
        loader.join(120)
        # Requests that reach the port as the drain ends get a refused or reset connection (the
        # listener closes): no answer to check, and no row. A request the gateway did take and
        # then dropped would show below as a row no client saw that is not interrupted.
        for r in box["r"]:
            if r["kind"] == "transport_error":
                r["kind"] = "refused_after_sigterm"
        results += box["r"]
        # Phase 3: SIGKILL while load is in flight, then the restart's recovery.
        gw.start()
        killed = threading.Event()
        box = {}
        loader = threading.Thread(target=lambda: box.setdefault("r", _load(gw.url, 2000, 60,
                                                                           killed)))
        loader.start()
        time.sleep(0.6)
        killed.set()
        exits["sigkill"] = gw.signal(signal.SIGKILL)
        loader.join(120)
        results += box["r"]
        gw.start()  # recovery marks the killed requests interrupted
        results += _load(gw.url, 3000, 20, never)
        exits["final_sigterm"] = gw.signal(signal.SIGTERM)
    finally:
        gw.kill_if_running()
        for server in servers.values():
            server.stop()

    kinds = Counter(r["kind"] if not r["kind"].startswith("BROKEN") else "BROKEN"
                    for r in results)
    broken = [r for r in results if r["kind"].startswith(("BROKEN", "transport_error"))
              and r["kind"] != "transport_error_after_kill"]
    rows = _rows(tmp_path / "state.sqlite")
    by_id = Counter(r["id"] for r in rows)
    statuses = Counter(r["status"] for r in rows)
    seen_ids = {r["id"] for r in results if r["id"]}
    spend_total, cost_total = _spend(tmp_path / "state.sqlite")
    leaks = _leaks(tmp_path, results)
    report = {
        "requests_sent": len(results), "client_outcomes": dict(sorted(kinds.items())),
        "backend_faults": {n: dict(a.faults) for n, a in apps.items()},
        "rows": len(rows), "row_statuses": dict(sorted(statuses.items())),
        "duplicated_rows": sum(1 for c in by_id.values() if c > 1),
        "ids_seen_without_row": len(seen_ids - set(by_id)),
        "rows_in_progress": statuses.get("in_progress", 0),
        "spend_table_total": spend_total, "request_cost_total": cost_total,
        "credential_leaks": len(leaks), "exit_codes": exits,
    }
    print("\nchaos report:", json.dumps(report, indent=1))
    if os.environ.get("POLYROUTE_CHAOS_REPORT"):
        Path(os.environ["POLYROUTE_CHAOS_REPORT"]).write_text(json.dumps(report, indent=1))

    assert not broken, f"{len(broken)} clients got no clear answer, e.g. {broken[:3]}"
    assert sum(a.faults[f] for a in apps.values() for f in FAULTS if f != "ok") > 50
    assert kinds["answer"] > 100, "the gateway should still answer most requests"
    assert report["rows_in_progress"] == 0
    assert report["duplicated_rows"] == 0
    assert report["ids_seen_without_row"] == 0, "a client saw a request id with no row"
    # Every row is a request a client sent: the ones clients saw an id for, plus those the kill
    # interrupted before any byte reached their client — and nothing else.
    unseen = [r for r in rows if r["id"] not in seen_ids]
    assert all(r["status"] == "interrupted" for r in unseen), unseen[:3]
    assert len(unseen) <= sum(1 for r in results if r["kind"] == "transport_error_after_kill")
    assert abs(spend_total - cost_total) < 1e-9, (spend_total, cost_total)
    assert not leaks, f"credentials leaked: {leaks[:3]}"


def _rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM requests")]
    finally:
        conn.close()


def _spend(path: Path) -> tuple[float, float]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        spend = conn.execute("SELECT COALESCE(SUM(cost), 0) FROM spend").fetchone()[0]
        cost = conn.execute("SELECT COALESCE(SUM(cost), 0) FROM requests").fetchone()[0]
        return float(spend), float(cost)
    finally:
        conn.close()


def _leaks(tmp: Path, results: list[dict[str, Any]]) -> list[str]:
    """Where a backend key (or its distinctive tail) appears: responses, the log, any row."""
    needles = [s for s in SECRETS.values()] + [s[-14:] for s in SECRETS.values()]
    found = []
    for r in results:
        blob = r.get("text", "") + json.dumps(r.get("headers", {}))
        found += [f"response {r['i']}" for n in needles if n in blob][:1]
    log = tmp.joinpath("gateway.log").read_text(errors="replace")
    found += [f"log: {n}" for n in needles if n in log]
    conn = sqlite3.connect(f"file:{tmp / 'state.sqlite'}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):  # noqa: S608 - our own names
                text = " ".join(str(v) for v in row)
                found += [f"row of {table}" for n in needles if n in text][:1]
    finally:
        conn.close()
    return found

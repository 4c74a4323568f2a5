"""The real ``polyroute serve`` process: graceful shutdown and crash recovery.

These start the gateway as a subprocess (as an operator would), in front of an in-process
stand-in backend, and stop it with SIGTERM (in-flight requests finish, the store is flushed) or
SIGKILL (the request in flight is found ``in_progress`` and marked ``interrupted`` on restart).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import yaml
from gateway_world import KEY, MATH_PROMPT, wait_for
from standin import ServerThread, StandIn

from polyroute.gateway import hash_key
from polyroute.store import SQLiteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backend():
    app = StandIn("alpha")
    with ServerThread(app) as server:
        yield app, server.url


def _start(tmp_path: Path, router_dir: Path, backend_url: str, shutdown_timeout: float = 30
           ) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    config = {
        "backends": [{"name": name, "base_url": f"{backend_url}/v1", "input_price_per_mtok": 1,
                      "output_price_per_mtok": 1} for name in ("alpha", "beta", "gamma")],
        "router": {"path": str(router_dir)},
        "keys": [{"id": "one", "sha256": hash_key(KEY)}],
        "store": {"path": "state.sqlite"},
        "server": {"port": port, "log_level": "warning", "shutdown_timeout": shutdown_timeout},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "polyroute", "serve", "--config", str(path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the gateway exited: {proc.stderr.read().decode()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, "the gateway to start", timeout=60)
    return proc, url


def _kill_once_recorded(tmp_path: Path, proc: subprocess.Popen, thread: threading.Thread,
                        condition, what: str) -> None:
    """SIGKILL the gateway once its store's rows satisfy ``condition`` (read as another process
    would), then wait for it and the client thread."""
    reader = SQLiteStore(tmp_path / "state.sqlite", readonly=True)
    try:
        wait_for(lambda: condition(reader.recent_requests()), what)
    finally:
        reader.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    thread.join(60)


def _send_in_background(url: str) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def send() -> None:
        try:
            box["response"] = httpx.post(
                f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                json={"model": "polyroute-auto",
                      "messages": [{"role": "user", "content": MATH_PROMPT}]}, timeout=60)
        except httpx.TransportError as exc:
            box["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    return thread, box


def test_sigterm_lets_in_flight_requests_finish(tmp_path, router_dir, backend):
    app, backend_url = backend
    proc, url = _start(tmp_path, router_dir, backend_url)
    try:
        app.mode = "delay:1.5"
        thread, box = _send_in_background(url)
        wait_for(lambda: app.calls == 1, "the backend to receive the request", timeout=60)
        proc.send_signal(signal.SIGTERM)
        thread.join(60)
        assert box["response"].status_code == 200
        assert box["response"].json()["choices"][0]["message"]["content"] == "alpha answers"
        # uvicorn re-raises the signal once shut down, so the exit status reports SIGTERM.
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = SQLiteStore(tmp_path / "state.sqlite", readonly=True)
    try:
        [rec] = store.recent_requests()
        assert rec.status == "ok" and rec.chosen == "alpha"
        assert rec.id == box["response"].headers["x-polyroute-request-id"]
    finally:
        store.close()
    # Closed cleanly: the WAL was checkpointed into the database file.
    assert not (tmp_path / "state.sqlite-wal").exists() or \
        (tmp_path / "state.sqlite-wal").stat().st_size == 0


def test_a_killed_gateway_leaves_no_request_unrecorded(tmp_path, router_dir, backend):
    app, backend_url = backend
    proc, url = _start(tmp_path, router_dir, backend_url)
    try:
        app.mode = "delay:60"
        thread, box = _send_in_background(url)
        wait_for(lambda: app.calls == 1, "the backend to receive the request", timeout=60)
        _kill_once_recorded(tmp_path, proc, thread,
                            lambda rows: [r.status for r in rows] == ["in_progress"],
                            "the start row to be committed")
        assert "error" in box  # the client saw the connection die
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = SQLiteStore(tmp_path / "state.sqlite", recover=True)  # what the next start does
    try:
        [rec] = store.recent_requests()
        assert rec.status == "interrupted" and rec.key_id == "one"
        assert rec.error
    finally:
        store.close()


def test_a_second_gateway_on_a_busy_port_fails_before_loading_anything(tmp_path, router_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = {
            "backends": [{"name": n, "base_url": "http://127.0.0.1:9/v1",
                          "input_price_per_mtok": 1, "output_price_per_mtok": 1}
                         for n in ("alpha", "beta", "gamma")],
            "router": {"path": str(router_dir)},
            "keys": [{"id": "one", "sha256": hash_key(KEY)}],
            "store": {"path": str(tmp_path / "state.sqlite")},
            "server": {"port": port, "log_level": "info"},
        }
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "polyroute", "serve", "--config", str(path)],
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyroute: error: "), done.stderr
    assert f"port {port} is already in use" in lines[0]
    assert "gateway ready" not in done.stderr + done.stdout
    assert not (tmp_path / "state.sqlite").exists()  # the live store was never opened


def _stream_in_background(url: str) -> tuple[threading.Thread, dict]:
    """A streamed request whose received bytes are collected in ``box["chunks"]``."""
    box: dict = {"chunks": []}

    def send() -> None:
        try:
            with httpx.stream("POST", f"{url}/v1/chat/completions",
                              headers={"authorization": f"Bearer {KEY}"},
                              json={"model": "polyroute-auto", "stream": True,
                                    "messages": [{"role": "user", "content": MATH_PROMPT}]},
                              timeout=60) as r:
                box["status"] = r.status_code
                for chunk in r.iter_bytes():
                    box["chunks"].append(chunk)
        except httpx.TransportError as exc:
            box["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    return thread, box


def test_sigterm_drains_visibly_and_ends_a_long_stream_with_an_error(tmp_path, router_dir,
                                                                     backend):
    app, backend_url = backend
    proc, url = _start(tmp_path, router_dir, backend_url, shutdown_timeout=4)
    try:
        app.mode = "stall_mid"  # two chunks, then nothing until the gateway hangs up
        thread, box = _stream_in_background(url)
        wait_for(lambda: b"answers 1|" in b"".join(box["chunks"]), "the stream to start",
                 timeout=60)
        proc.send_signal(signal.SIGTERM)
        # During the drain the listener stays open: a load balancer sees "draining" (polled
        # only until the signal has been handled; a refused connection fails the test).
        seen: list[httpx.Response] = []
        wait_for(lambda: seen.append(httpx.get(f"{url}/healthz", timeout=5))
                 or seen[-1].json()["status"] != "ok", "the gateway to handle SIGTERM")
        assert (seen[-1].status_code, seen[-1].json()["status"]) == (503, "draining")
        refused = httpx.post(f"{url}/v1/chat/completions", headers={
            "authorization": f"Bearer {KEY}"}, json={"model": "polyroute-auto", "messages": [
                {"role": "user", "content": MATH_PROMPT}]}, timeout=5)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "gateway_draining"
        thread.join(60)
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    received = b"".join(box["chunks"])
    assert box["status"] == 200 and "error" not in box, box.get("error")
    last = received.strip().split(b"\n\n")[-1]
    assert last.startswith(b"data: ") and b'"gateway_shutdown"' in last, received
    store = SQLiteStore(tmp_path / "state.sqlite", readonly=True)
    try:
        [stream] = [r for r in store.recent_requests() if r.stream]
        assert stream.status == "interrupted" and stream.chosen == "alpha"
        assert stream.error and "shut down" in stream.error
    finally:
        store.close()


def test_a_stream_cut_by_a_kill_keeps_its_attempts_and_cost(tmp_path, router_dir, backend):
    app, backend_url = backend
    proc, url = _start(tmp_path, router_dir, backend_url)
    try:
        app.mode = "stall_mid"
        thread, box = _stream_in_background(url)
        wait_for(lambda: b"answers 1|" in b"".join(box["chunks"]), "the stream to start",
                 timeout=60)
        _kill_once_recorded(tmp_path, proc, thread,
                            lambda rows: [r.chosen for r in rows] == ["alpha"],
                            "the stream's progress to be committed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = SQLiteStore(tmp_path / "state.sqlite", recover=True)  # what the next start does
    try:
        [row] = store.recent_requests()
        rec = store.get_request(row.id)
        assert rec.status == "interrupted" and rec.chosen == "alpha"
        assert [(a.backend, a.outcome) for a in rec.attempts] == [("alpha", "ok")]
        assert rec.cost > 0  # the predicted cost of the answer alpha was streaming
        assert store.spend_by_key() == {"one": rec.cost}
    finally:
        store.close()


def test_a_plain_request_still_waiting_at_the_drain_deadline_gets_a_503(tmp_path, router_dir,
                                                                         backend):
    app, backend_url = backend
    proc, url = _start(tmp_path, router_dir, backend_url, shutdown_timeout=1)
    try:
        app.mode = "delay:60"
        thread, box = _send_in_background(url)
        wait_for(lambda: app.calls == 1, "the backend to receive the request", timeout=60)
        proc.send_signal(signal.SIGTERM)
        thread.join(60)
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "error" not in box, box.get("error")  # an answer, not a dropped connection
    assert box["response"].status_code == 503
    assert box["response"].json()["error"]["code"] == "gateway_shutdown"
    store = SQLiteStore(tmp_path / "state.sqlite", readonly=True)
    try:
        [rec] = store.recent_requests()
        assert (rec.status, rec.http_status) == ("error", 503) and "shut down" in rec.error
    finally:
        store.close()

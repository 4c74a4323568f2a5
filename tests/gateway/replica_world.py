"""Gateway replicas as real ``polyroute serve`` processes on loopback, sharing one Redis.

Each replica has its own port and log; the store is a parameter (``store``: a config value) so
the same tests run with a SQLite file per replica today and one shared database once the
PostgreSQL store is there. What the tests check is read back from every replica's store.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from gateway_world import KEY, OTHER_KEY, wait_for

from polyroute.gateway import hash_key
from polyroute.store import SQLiteStore

#: A key without limits (keys ``one`` and ``two`` are gateway_world's KEY and OTHER_KEY).
THIRD_KEY = "pr-test-key-three"


def replica_config(backend_urls: dict[str, str], router: Path, *, price: float, limit: float,
                   rpm: int, shared: dict[str, Any], **more: Any) -> dict[str, Any]:
    """Replicas' common config: every backend at ``price`` $/Mtok in and out; key ``one``
    (admin) limited to ``limit`` dollars in total, ``two`` to ``rpm``, ``three`` free."""
    return {
        "backends": [{"name": name, "base_url": f"{url}/v1", "input_price_per_mtok": price,
                      "output_price_per_mtok": price, "timeout": 10}
                     for name, url in backend_urls.items()],
        "router": {"path": str(router)},
        "profiles": {"polyroute-auto": {"lam": 0.0}},
        "keys": [{"id": "one", "sha256": hash_key(KEY), "spend_limit": limit,
                  "spend_period": "total", "admin": True},
                 {"id": "two", "sha256": hash_key(OTHER_KEY), "rpm": rpm},
                 {"id": "three", "sha256": hash_key(THIRD_KEY)}],
        "shared": shared, **more}


@contextlib.contextmanager
def running(replicas: Sequence[Replica]) -> Iterator[list[Replica]]:
    """Start the replicas; stop them (SIGTERM) however the block ends."""
    try:
        for replica in replicas:
            replica.start()
        yield list(replicas)
    finally:
        for replica in replicas:
            replica.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One gateway process; ``config`` is the whole gateway config but for port and store."""

    def __init__(self, tmp: Path, name: str, config: dict[str, Any],
                 store: Any | None = None) -> None:
        self.name = name
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store_path = self.dir / "state.sqlite"
        self.config = {**config, "store": store if store is not None else
                       {"path": str(self.store_path)},
                       "server": {**config.get("server", {}), "port": self.port}}
        self.config_path = self.dir / "gateway.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.log = self.dir / "gateway.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Replica:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "polyroute", "serve",
                                          "--config", str(self.config_path)],
                                         env=env, stdout=log, stderr=log)
        wait_for(self.ready, f"replica {self.name} to start", timeout=120, poll=0.1)
        return self

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"replica {self.name} exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def kill(self) -> None:
        """SIGKILL: the process ends at once, holding whatever it held (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM: drain, record what is in flight, flush the store."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)

    def rows(self) -> list:
        """Every request row this replica's SQLite store holds (read as another process)."""
        reader = SQLiteStore(self.store_path, readonly=True)
        try:
            return reader.recent_requests(limit=1_000_000)
        finally:
            reader.close()


def request_ceiling(text: str, max_tokens: int, price_per_mtok: float) -> float:
    """One request's reservation with the client's ``max_tokens`` when every backend charges
    ``price_per_mtok`` in and out: the most a key may end over its limit."""
    from polyroute.gateway.stages.reserve import prompt_tokens

    body = {"messages": [{"role": "user", "content": text}]}
    return (prompt_tokens(body) + max_tokens) * price_per_mtok / 1e6


def redis_tally(shared: dict[str, Any], key_id: str) -> float:
    """A total-period key's spend tally in Redis (the shared ledger's own number)."""
    import redis

    client = redis.Redis.from_url(shared["url"], decode_responses=True)
    try:
        return float(client.get(f"{shared['prefix']}:spend:{{{key_id}}}:tally:total") or 0)
    finally:
        client.close()


def chat(url: str, key: str, text: str, *, model: str = "polyroute-auto", timeout: float = 30,
         **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=timeout,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": text}],
                            **body})

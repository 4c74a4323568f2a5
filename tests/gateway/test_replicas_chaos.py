"""Three gateway replicas on loopback sharing one Redis, under load with backend faults and one
replica killed mid-run; then a router switch published by one replica and followed by all.

Run twice: each replica with its own SQLite file, and all three sharing one PostgreSQL store (a
fresh schema; skipped with the reason where no PostgreSQL answers). ``POLYROUTE_TEST_STORE`` (a
``store:`` value) replaces the PostgreSQL one with another shared store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
import yaml
from gateway_world import (
    KEY,
    MATH_PROMPT,
    OTHER_KEY,
    POETRY_PROMPT,
    save_router,
    swapped_outcomes,
    wait_for,
)
from redis_world import new_space
from replica_world import (
    THIRD_KEY,
    Replica,
    chat,
    redis_tally,
    replica_config,
    request_ceiling,
    running,
)

from pgschema import fresh_schema
from polyroute.gateway.shared import RATE_WINDOW
from polyroute.store import open_store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")

LIMIT = 0.6
PRICE = 1000.0  # $ per million tokens, every backend: a request costs about $0.03
MAX_TOKENS = 20
RPM = 10
N_REQUESTS = 150
KILL_AFTER = 50


def _store() -> Any | None:
    raw = os.environ.get("POLYROUTE_TEST_STORE")
    return yaml.safe_load(raw) if raw else None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def trio(request, tmp_path_factory, router_dir, _standin_servers) -> Iterator[list[Replica]]:
    with contextlib.ExitStack() as stack:
        shared_store = None
        if request.param == "postgresql":
            shared_store = _store() or stack.enter_context(fresh_schema("replicas"))
        yield from _trio(tmp_path_factory, router_dir, _standin_servers, shared_store)


def _trio(tmp_path_factory, router_dir, _standin_servers, shared_store) -> Iterator[list[Replica]]:
    with new_space() as space:
        tmp = tmp_path_factory.mktemp("trio")
        live_router = tmp / "router"  # one directory every replica loads (a shared volume)
        shutil.copytree(router_dir, live_router)
        urls = {name: server.url for name, (_, server) in _standin_servers.items()}
        config = replica_config(
            urls, live_router, price=PRICE, limit=LIMIT, rpm=RPM,
            shared=space.shared(reservation_ttl=2),
            breaker={"failure_threshold": 3, "cooldown": 0.5, "max_cooldown": 1.0},
            server={"log_level": "info", "shutdown_timeout": 5})
        with running([Replica(tmp, name, config, store=shared_store)
                      for name in ("a", "b", "c")]) as replicas:
            yield replicas


class Load:
    """Bounded concurrent clients, round-robin over the live replicas; a request refused at
    the connection (its replica is dead) goes to the next one, as a load balancer would."""

    KEYS = (KEY, THIRD_KEY, OTHER_KEY)

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.dead: set[str] = set()
        self.lock = threading.Lock()
        self.results: list[dict[str, Any]] = []
        self.done = 0

    def one(self, i: int) -> None:
        key = self.KEYS[i % 3]
        text = (MATH_PROMPT, POETRY_PROMPT)[i % 2]
        extra = {"max_tokens": MAX_TOKENS} if key == KEY else {}
        for step in range(len(self.replicas)):
            replica = self.replicas[(i + step) % len(self.replicas)]
            if replica.name in self.dead:
                continue
            out = {"i": i, "key": key, "replica": replica.name, "status": None, "id": None}
            try:
                r = chat(replica.url, key, text, **extra)
                out["status"], out["id"] = r.status_code, r.headers.get("x-polyroute-request-id")
                if r.status_code == 200:
                    assert r.json()["choices"], r.text  # read whole: acknowledged
            except httpx.TransportError:
                out["status"] = "transport"  # not acknowledged: the next replica takes it
            with self.lock:
                self.results.append(out)
            if out["status"] != "transport":
                break
        with self.lock:
            self.done += 1


def _all_rows(replicas: list[Replica]) -> list:
    """Every request row: of the one store the replicas share, or of each one's own file."""
    shared = replicas[0].config["store"]
    if isinstance(shared, str):
        reader = open_store(shared, readonly=True)
        try:
            return reader.recent_requests(limit=1_000_000)
        finally:
            reader.close()
    return [row for replica in replicas for row in replica.rows()]


def test_three_replicas_under_load_with_faults_and_a_kill_keep_every_invariant(trio, standins):
    a, b, c = trio
    standins["alpha"].script.extend(["500", "ok", "ok", "drop", "ok", "ok"] * 40)
    standins["beta"].mode = "delay:0.02"
    load = Load(trio)
    redis_url = a.config["shared"]["url"]
    clock = redis.Redis.from_url(redis_url)
    first_window = clock.time()[0] // RATE_WINDOW
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(load.one, i) for i in range(N_REQUESTS)]
        wait_for(lambda: load.done >= KILL_AFTER, "a third of the load", timeout=120)
        with load.lock:
            load.dead.add("c")
        c.kill()  # SIGKILL mid-run, holding whatever it held
        for f in futures:
            f.result()
    windows = clock.time()[0] // RATE_WINDOW - first_window + 1
    clock.close()
    c.start()  # a restarted replica rejoins; its store marks what it was doing interrupted
    for replica in trio:
        replica.stop()

    rows = _all_rows(trio)
    ids = Counter(row.id for row in rows)
    acked = [r for r in load.results if r["status"] == 200]
    # Every acknowledged request has exactly one row, finished ok; no row is written twice.
    assert all(count == 1 for count in ids.values())
    by_id = {row.id: row for row in rows}
    missing = [r for r in acked if r["id"] not in by_id]
    not_ok = [r for r in acked if r["id"] in by_id and by_id[r["id"]].status != "ok"]
    assert not missing and not not_ok, (missing, not_ok)
    # Every request the clients sent reached an answer or a refusal at the connection.
    assert {r["i"] for r in load.results if r["status"] != "transport"} == set(range(N_REQUESTS))
    # The spend limit held over the three replicas (and the dead one's reservations, charged
    # in full when they expired, keep the tally an upper bound of it).
    ceiling = request_ceiling(MATH_PROMPT, MAX_TOKENS, PRICE)
    spent = sum(row.cost for row in rows if row.key_id == "one")
    assert spent <= LIMIT + ceiling
    assert redis_tally(a.config["shared"], "one") <= LIMIT + ceiling
    assert any(r["status"] == 429 for r in load.results if r["key"] == KEY)
    # The rate limit held over the three replicas.
    served = [r for r in load.results if r["key"] == OTHER_KEY and r["status"] == 200]
    assert served and len(served) <= RPM * windows
    print(f"\nthree replicas: sent {N_REQUESTS}, acknowledged {len(acked)}, rows {len(rows)}, "
          f"duplicates 0, key one spent ${spent:.4f} of ${LIMIT} (ceiling ${ceiling:.4f}), "
          f"rpm key served {len(served)} over {windows} window(s)")


def test_a_router_switch_on_one_replica_is_followed_by_every_replica(trio, standins):
    """A new router is written to the shared router directory and one replica is told to
    reload: the others follow it (pub/sub, or their poll), and route math to beta."""
    a, b, c = trio
    for replica in trio:
        if replica.proc is None or replica.proc.poll() is not None:
            replica.start()

    def routed(replica: Replica) -> str | None:
        r = chat(replica.url, THIRD_KEY, MATH_PROMPT)
        return r.headers.get("x-polyroute-model")

    assert all(routed(r) == "alpha" for r in trio)
    identity = save_router(swapped_outcomes(), a.config["router"]["path"])
    started = time.monotonic()
    r = httpx.post(f"{a.url}/v1/admin/reload-router", timeout=60,
                   headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["current"] == identity
    for replica in (b, c):
        wait_for(lambda replica=replica: routed(replica) == "beta",
                 f"replica {replica.name} to follow the switch", timeout=60, poll=0.1)
    delay = time.monotonic() - started
    for replica in (b, c):
        assert f"-> {identity}" in replica.log.read_text()
    print(f"\nrouter switch followed by every replica within {delay:.2f} s")

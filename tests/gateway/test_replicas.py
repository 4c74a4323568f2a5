"""Two real gateway processes on loopback sharing one Redis: a key's spend limit, its rate limit
and a backend's open breaker hold across both (``shared: redis://…``).

Each replica keeps its own SQLite store here (a parameter of ``replica_world.Replica``); what is
checked is read back from both stores and from Redis.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, wait_for
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

from polyroute.gateway.shared import RATE_WINDOW

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")

LIMIT = 0.5
PRICE = 1000.0  # $ per million tokens, in and out, every backend: a request costs ~$0.03
RPM = 6
MAX_TOKENS = 20


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, router_dir, _standin_servers) -> Iterator[list[Replica]]:
    with new_space() as space:
        tmp = tmp_path_factory.mktemp("replicas")
        urls = {name: server.url for name, (_, server) in _standin_servers.items()}
        config = replica_config(urls, router_dir, price=PRICE, limit=LIMIT, rpm=RPM,
                                shared=space.shared(),
                                breaker={"failure_threshold": 3, "cooldown": 60},
                                server={"log_level": "info"})
        with running([Replica(tmp, name, config) for name in ("a", "b")]) as pair:
            yield pair


def _rows(replicas: list[Replica], key_id: str) -> list:
    return [r for replica in replicas for r in replica.rows() if r.key_id == key_id]


def test_both_replicas_say_their_state_is_shared(replicas):
    for replica in replicas:
        log = replica.log.read_text()
        assert "shared state: redis://127.0.0.1:6379/0 (prefix 'prtest-" in log


def test_a_spend_limit_holds_over_two_replicas(replicas, standins):
    """48 concurrent requests of a key limited to $0.50, round-robin over two replicas: the
    key's spend, summed over both stores, ends at most one request's ceiling over the limit
    (each replica alone would have let it spend the limit), and Redis's tally is that sum."""
    for app in standins.values():
        app.mode = "delay:0.05"  # requests overlap, so admissions race
    n = 48

    def one(i: int) -> int:
        return chat(replicas[i % 2].url, KEY, MATH_PROMPT, max_tokens=MAX_TOKENS).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(n)))
    assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses
    wait_for(lambda: len(_rows(replicas, "one")) == n, "every request's row", timeout=30)
    rows = _rows(replicas, "one")
    spent = sum(r.cost for r in rows)
    ceiling = request_ceiling(MATH_PROMPT, MAX_TOKENS, PRICE)
    assert statuses.count(200) == sum(1 for r in rows if r.status == "ok")
    assert LIMIT - ceiling < spent <= LIMIT + ceiling
    shared = replicas[0].config["shared"]
    wait_for(lambda: abs(redis_tally(shared, "one") - spent) < 1e-9,
             "Redis's tally to equal the stores' spend", timeout=10)
    client = redis.Redis.from_url(shared["url"])
    assert client.zcard(f"{shared['prefix']}:spend:{{one}}:res") == 0
    client.close()


def test_a_rate_limit_holds_over_two_replicas(replicas, standins):
    """rpm 6, 20 requests alternating over the two replicas: at most 6 per minute window
    (by Redis's clock) are served, the others get 429 with Retry-After, and are recorded."""
    client = redis.Redis.from_url(replicas[0].config["shared"]["url"])
    first = client.time()[0] // RATE_WINDOW
    answers = [chat(replicas[i % 2].url, OTHER_KEY, MATH_PROMPT) for i in range(20)]
    windows = client.time()[0] // RATE_WINDOW - first + 1
    client.close()
    served = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(served) + len(refused) == 20
    assert len(served) <= RPM * windows and served
    assert all(r.json()["error"]["code"] == "rate_limit_exceeded" for r in refused)
    assert all(1 <= int(r.headers["retry-after"]) <= RATE_WINDOW for r in refused)
    wait_for(lambda: sum(1 for r in _rows(replicas, "two") if r.http_status == 429)
             == len(refused), "the refusals' rows", timeout=30)


def test_a_breaker_opened_on_one_replica_makes_the_other_skip_the_backend(replicas, standins):
    """alpha fails three times on replica a (its breaker opens): replica b, which never saw a
    failure, reports alpha open and does not send it the next request."""
    a, b = replicas
    standins["alpha"].mode = "500"
    for _ in range(3):
        assert chat(a.url, THIRD_KEY, MATH_PROMPT, model="alpha").status_code == 502
    assert a.health()["backends"]["alpha"] == "open"
    wait_for(lambda: b.health()["backends"]["alpha"] == "open", "b to see alpha's breaker open",
             timeout=10)
    calls = standins["alpha"].calls
    r = chat(b.url, THIRD_KEY, MATH_PROMPT, model="alpha")
    assert r.status_code == 503 and "cooling down" in r.json()["error"]["message"]
    assert standins["alpha"].calls == calls

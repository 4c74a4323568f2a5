"""Redis briefly unreachable while a gateway serves (a proxy in between is cut): limited keys
fail closed with 503, other keys are served, and a settle that failed meanwhile is written
once Redis is back, so nothing is under-counted."""

from __future__ import annotations

import threading

import pytest
import redis
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, wait_for
from redis_world import CuttableProxy

from polyroute.gateway import hash_key


@pytest.fixture
def proxy():
    p = CuttableProxy().start()
    yield p
    p.stop()


def test_a_redis_outage_fails_limited_keys_closed_and_loses_no_settle(
        gateway_factory, standins, redis_space, proxy):
    gw = gateway_factory({
        "keys": [{"id": "one", "sha256": hash_key(KEY), "spend_limit": 10.0,
                  "spend_period": "total"},
                 {"id": "two", "sha256": hash_key(OTHER_KEY)}],
        "shared": {"url": proxy.url, "prefix": redis_space.prefix, "timeout": 0.5,
                   "reservation_ttl": 60}})
    direct = redis.Redis.from_url(redis_space.url, decode_responses=True)
    tally = f"{redis_space.prefix}:spend:{{one}}:tally:total"
    held = f"{redis_space.prefix}:spend:{{one}}:res"
    assert gw.chat(MATH_PROMPT).status_code == 200

    # A request in flight when Redis goes away: its settle fails, and is retried later.
    standins["alpha"].mode = "hold"
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(gw.chat(MATH_PROMPT)))
    thread.start()
    wait_for(lambda: standins["alpha"].calls == 2, "the second request to reach alpha")
    proxy.cut()
    standins["alpha"].gate.set()
    thread.join(30)
    assert answers[0].status_code == 200
    assert direct.zcard(held) == 1  # still held in Redis: counted, not lost

    refused = gw.chat(MATH_PROMPT)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "shared_state_down"
    assert refused.headers["retry-after"] == "1"
    assert gw.chat(MATH_PROMPT, key=OTHER_KEY).status_code == 200  # no limit: no Redis needed

    proxy.restore()
    wait_for(lambda: direct.zcard(held) == 0, "the failed settle to be retried", timeout=60)
    gw.flush()
    rows = [r for r in gw.gateway.store.recent_requests(100) if r.key_id == "one"]
    assert float(direct.get(tally)) == pytest.approx(sum(r.cost for r in rows))
    wait_for(lambda: gw.chat(MATH_PROMPT).status_code == 200, "limited keys served again")
    direct.close()

"""Conversation pins in Redis: a pin put by one replica is found by another, and expires."""

from __future__ import annotations

import asyncio
import time

from polyroute import store
from polyroute.config import SharedConfig
from polyroute.gateway.shared.redis_client import connect
from polyroute.gateway.shared.redis_pins import RedisPins


def _pin(key: str, expires_ts: float):
    now = time.time()
    return store.ConversationPin(key=key, conversation_id="c1", model="alpha", key_id="one",
                                 profile="polyroute-auto", turns=2, prefix_tokens=120,
                                 fallbacks=("beta", "gamma"), estimated_cost=0.001,
                                 created_ts=now, last_ts=now, expires_ts=expires_ts)


def test_a_pin_put_on_one_replica_is_found_on_another_until_it_expires(redis_space):
    config = SharedConfig.model_validate(redis_space.shared())

    async def scenario():
        a_client, b_client = connect(config), connect(config)
        a, b = RedisPins(a_client, config.prefix), RedisPins(b_client, config.prefix)
        pin = _pin("h1", time.time() + 60)
        await a.put(pin)
        found = await b.get("h1", time.time())
        await a.put(_pin("h2", time.time() + 0.2))
        while await b_client.exists(f"{config.prefix}:pin:h2"):  # Redis expires it itself
            await asyncio.sleep(0.05)
        gone = await b.get("h2", time.time())
        await a_client.aclose()
        await b_client.aclose()
        return pin, found, gone

    pin, found, gone = asyncio.run(scenario())
    assert found == pin and gone is None

"""Pin stores: the in-store one (SQLite) and the in-memory one keep, replace and expire pins."""

from __future__ import annotations

import asyncio
import threading

import pytest

from polyroute.conversations import MemoryPins, StorePins
from polyroute.store import ConversationPin, SQLiteStore


def pin(key="k", model="alpha", last=1000.0, idle=60.0, turns=1) -> ConversationPin:
    return ConversationPin(key=key, conversation_id="prefix:abc", model=model, key_id="one",
                           profile="auto", turns=turns, prefix_tokens=1200,
                           fallbacks=("beta", "gamma"), estimated_cost=1e-4, created_ts=900.0,
                           last_ts=last, expires_ts=last + idle)


@pytest.fixture(params=["store", "store-cold", "memory"])
def pins(request, tmp_path):
    if request.param == "memory":
        yield MemoryPins()
        return
    store = SQLiteStore(tmp_path / "s.sqlite")
    # store-cold: nothing answered from memory, so every read goes to SQLite.
    yield StorePins(store, recent=0 if request.param == "store-cold" else 100)
    store.close()


def run(coro):
    return asyncio.run(coro)


def _flush(pins):
    if isinstance(pins, StorePins):
        pins.store.flush()


def test_put_get_replace(pins):
    run(pins.put(pin()))
    _flush(pins)
    got = run(pins.get("k", 1001.0))
    assert got == pin()
    run(pins.put(pin(model="beta", last=1010.0, turns=2)))
    _flush(pins)
    got = run(pins.get("k", 1011.0))
    assert got.model == "beta" and got.turns == 2 and got.fallbacks == ("beta", "gamma")
    assert run(pins.get("other", 1011.0)) is None


def test_an_idle_pin_expires(pins):
    run(pins.put(pin(last=1000.0, idle=60.0)))
    _flush(pins)
    assert run(pins.get("k", 1059.0)) is not None
    assert run(pins.get("k", 1060.0)) is None  # not returned once expired, swept or not
    run(pins.expire(1060.0))
    _flush(pins)
    assert run(pins.get("k", 0.0)) is None  # and gone after the sweep


def test_the_store_sweeps_expired_pins_on_put(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    try:
        pins = StorePins(store, sweep_s=10.0, recent=0)
        run(pins.put(pin(key="old", last=1000.0, idle=5.0)))
        run(pins.put(pin(key="new", last=1020.0, idle=60.0)))  # ≥ sweep_s later: sweeps
        store.flush()
        assert store.get_pin("old", 0.0) is None and store.get_pin("new", 0.0) is not None
    finally:
        store.close()


def test_a_pin_just_written_is_read_back_before_the_store_commits(tmp_path):
    """A client's next turn can arrive before the queued write is committed: the pin must be
    found all the same."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    try:
        pins = StorePins(store)
        gate = threading.Event()
        store._submit(lambda conn: gate.wait(10))  # hold the writer
        run(pins.put(pin()))
        assert store.get_pin("k", 1001.0) is None  # not committed yet
        assert run(pins.get("k", 1001.0)) == pin()
        gate.set()
    finally:
        store.close()

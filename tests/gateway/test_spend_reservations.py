"""Spend reservations: in-flight requests count against a key's limit until they finish."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from gateway_world import KEY, MATH_PROMPT, MODELS, wait_for

from polyroute.config import KeyConfig
from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, input_tokens
from polyroute.gateway import hash_key
from polyroute.gateway.errors import APIError
from polyroute.gateway.spend import SpendTracker

PRICES = {m.name: m for m in MODELS}


def _key(limit: float | None = 1.0, period: str = "total", key_id: str = "k") -> KeyConfig:
    return KeyConfig(id=key_id, sha256="0" * 64, spend_limit=limit, spend_period=period)


def _refused(call, *args) -> str:
    with pytest.raises(APIError) as exc:
        call(*args)
    assert exc.value.status == 429 and exc.value.code == "spend_limit_exceeded"
    assert "in-flight requests are counted" in exc.value.message
    return exc.value.message


def _bound(model: str, output_tokens: int, text: str = MATH_PROMPT) -> float:
    """The price bound of one call, as the gateway computes it."""
    m = PRICES[model]
    return (input_tokens(text) * m.input_price_per_mtok
            + output_tokens * m.output_price_per_mtok) / 1e6


# -- SpendTracker --------------------------------------------------------------------------------
def test_reservations_count_until_released_and_the_actual_cost_replaces_them():
    key = _key(1.0)
    tracker = SpendTracker([key])
    first = tracker.reserve(key, 0.4)
    second = tracker.reserve(key, 0.5)  # 0.4 + 0.5 fits the limit
    assert tracker.reserved("k") == pytest.approx(0.9) and tracker.in_flight("k") == 2
    _refused(tracker.reserve, key, 0.2)  # 0.9 + 0.2 would not
    assert tracker.in_flight("k") == 2  # a refusal holds nothing
    tracker.check(key)  # 0.9 < 1: a smaller request could still start
    tracker.release(first)
    tracker.add("k", 0.3)
    assert tracker.spent("k") == pytest.approx(0.3)
    assert tracker.reserved("k") == pytest.approx(0.5)
    tracker.release(second)
    assert tracker.reserved("k") == 0.0 and tracker.in_flight("k") == 0
    assert tracker.spent("k") == pytest.approx(0.3)


def test_check_counts_spent_plus_reserved():
    key = _key(1.0)
    tracker = SpendTracker([key])
    tracker.add("k", 0.5)
    held = tracker.reserve(key, 0.5)
    message = _refused(tracker.check, key)
    assert "$0.5000 spent + $0.5000 reserved by 1 in-flight request(s)" in message
    tracker.release(held)
    tracker.check(key)


def test_release_happens_exactly_once():
    key = _key(1.0)
    tracker = SpendTracker([key])
    a, b = tracker.reserve(key, 0.3), tracker.reserve(key, 0.2)
    tracker.release(a)
    tracker.release(a)  # a second release gives nothing more back
    assert tracker.reserved("k") == pytest.approx(0.2) and tracker.in_flight("k") == 1
    tracker.release(None)
    tracker.release(b)
    tracker.release(b)
    assert tracker.reserved("k") == 0.0 and tracker.in_flight("k") == 0


def test_a_lone_request_starts_while_budget_remains_but_nothing_runs_beside_it():
    key = _key(1.0)
    tracker = SpendTracker([key])
    tracker.add("k", 0.9)
    big = tracker.reserve(key, 5.0)  # nothing in flight and $0.1 left: admitted
    _refused(tracker.check, key)
    _refused(tracker.reserve, key, 0.0)
    tracker.release(big)
    tracker.add("k", 0.05)  # it turned out cheap
    tracker.check(key)
    tracker.release(tracker.reserve(key, 0.01))
    tracker.add("k", 0.05)
    _refused(tracker.check, key)  # used up: even a lone request is refused
    _refused(tracker.reserve, key, 0.0)
    assert tracker.in_flight("k") == 0


def test_period_roll_over_resets_the_tally_but_keeps_in_flight_reservations():
    now = [dt.datetime(2026, 3, 17, 23, 0, tzinfo=dt.UTC).timestamp()]
    key = _key(1.0, "day")
    tracker = SpendTracker([key], clock=lambda: now[0])
    tracker.add("k", 0.9)
    held = tracker.reserve(key, 0.05)  # started before midnight, still running after it
    now[0] += 2 * 3600  # next UTC day
    tracker.check(key)
    assert tracker.spent("k") == 0.0 and tracker.reserved("k") == pytest.approx(0.05)
    _refused(tracker.reserve, key, 0.96)  # 0 + 0.05 + 0.96 > 1
    other = tracker.reserve(key, 0.9)
    tracker.release(held)
    tracker.add("k", 0.04)  # its cost lands in the period it finished in
    tracker.release(other)
    tracker.add("k", 0.5)
    assert tracker.spent("k") == pytest.approx(0.54) and tracker.reserved("k") == 0.0
    now[0] += 24 * 3600
    tracker.check(key)
    assert tracker.spent("k") == 0.0


def test_a_key_without_a_limit_is_untouched():
    free, limited = _key(None, key_id="f"), _key(1.0)
    tracker = SpendTracker([free, limited])
    assert tracker.reserve(free, 100.0) is None
    assert tracker.reserve(None, 100.0) is None
    tracker.add("f", 100.0)
    tracker.check(free)
    tracker.check(None)
    assert tracker.reserved("f") == 0.0 and tracker.in_flight("f") == 0
    assert tracker.spent("f") == 0.0
    assert tracker.reserved("k") == 0.0 and tracker.in_flight("k") == 0


# -- end to end ----------------------------------------------------------------------------------
def _limited_gateway(gateway_factory, limit: float, **backends):
    gw = gateway_factory({"keys": [{"id": "one", "sha256": hash_key(KEY),
                                    "spend_limit": limit, "spend_period": "day"}]},
                         backends=backends or None)
    return gw, gw.gateway.spend


def test_second_concurrent_request_is_refused_while_the_first_holds_its_reservation(
        gateway_factory, standins):
    reservation = _bound("alpha", 100)  # alpha asked directly, capped at 100 output tokens
    gw, spend = _limited_gateway(gateway_factory, 1.5 * reservation)  # one fits, two do not
    standins["alpha"].mode = "hold"
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(gw.chat, MATH_PROMPT, "alpha", max_tokens=100)
        wait_for(lambda: standins["alpha"].calls == 1, "alpha to hold the first request")
        assert spend.reserved("one") == pytest.approx(reservation)
        assert spend.in_flight("one") == 1 and spend.spent("one") == 0.0
        second = gw.chat(MATH_PROMPT, "alpha", max_tokens=100)
        assert second.status_code == 429, second.text
        error = second.json()["error"]
        assert error["code"] == "spend_limit_exceeded"
        assert "in-flight requests are counted" in error["message"]
        assert standins["alpha"].calls == 1  # refused before any backend was called
        standins["alpha"].gate.set()
        assert first.result().status_code == 200
    # The stand-in reports 10 prompt and 20 completion tokens; alpha costs $1 / $4 per Mtok.
    actual = (10 * 1.0 + 20 * 4.0) / 1e6
    assert spend.spent("one") == pytest.approx(actual)
    assert spend.reserved("one") == 0.0 and spend.in_flight("one") == 0
    gw.flush()
    refused = gw.gateway.store.get_request(second.headers["x-polyroute-request-id"])
    assert refused.http_status == 429
    # With nothing in flight and budget left, the next request runs again.
    assert gw.chat(MATH_PROMPT, "alpha", max_tokens=100).status_code == 200
    assert spend.spent("one") == pytest.approx(2 * actual)


def test_a_routed_request_reserves_its_most_expensive_candidate(gateway_factory, standins):
    gw, spend = _limited_gateway(gateway_factory, 1.0)
    standins["alpha"].mode = "hold"
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(gw.chat, MATH_PROMPT, "polyroute-auto")
        wait_for(lambda: standins["alpha"].calls == 1, "alpha to hold the request")
        reserved = spend.reserved("one")
        standins["alpha"].gate.set()
        response = held.result()
    assert response.status_code == 200 and response.headers["x-polyroute-model"] == "alpha"
    gw.flush()
    record = gw.gateway.store.get_request(response.headers["x-polyroute-request-id"])
    # No max_tokens: the cost model's assumed answer length; alpha and beta price alike.
    expected = max(max(_bound(c.model, DEFAULT_OUTPUT_TOKENS), c.estimated_cost or 0.0)
                   for c in record.candidates)
    assert {c.model for c in record.candidates} == {"alpha", "beta", "gamma"}
    assert reserved == pytest.approx(expected)
    assert spend.reserved("one") == 0.0 and spend.spent("one") == pytest.approx(record.cost)


def test_failed_and_abandoned_requests_give_their_reservation_back(gateway_factory, standins):
    # A stalled stream ends after the backend's timeout with no data: give it far longer than a
    # loaded machine needs to read the first chunk, so the check below sees it still in flight.
    gw, spend = _limited_gateway(gateway_factory, 1.0, alpha={"timeout": 60})
    for s in standins.values():
        s.mode = "500"
    assert gw.chat(MATH_PROMPT, "alpha").status_code >= 500
    assert spend.reserved("one") == 0.0 and spend.in_flight("one") == 0
    assert spend.spent("one") == 0.0  # nothing answered, nothing charged
    for s in standins.values():
        s.mode = "ok"
    standins["alpha"].mode = "stall_mid"
    with gw.client() as c, c.stream(
            "POST", "/v1/chat/completions",
            json={"model": "alpha", "stream": True,
                  "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        assert r.status_code == 200
        # Keep the iterator: a dropped one is closed when collected, and httpx then closes the
        # connection, so the gateway would (rightly) see the client leave before the check.
        chunks = r.iter_raw()
        assert next(chunks).startswith(b"data: ")
        assert spend.in_flight("one") == 1
    wait_for(lambda: spend.in_flight("one") == 0, "the abandoned stream to be finished")
    assert spend.reserved("one") == 0.0
    assert spend.spent("one") > 0.0  # an answer was started: it is charged

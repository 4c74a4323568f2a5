"""Requests and tokens per minute per key (``rpm``, ``tpm``), per process: fixed one-minute
windows with an exact Retry-After. (Across replicas: ``test_shared_state.py``.)"""

from __future__ import annotations

import asyncio

import pytest
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY

from polyroute.config import KeyConfig
from polyroute.gateway import hash_key
from polyroute.gateway.errors import APIError
from polyroute.gateway.shared import RATE_WINDOW, LocalRates


def _key(**limits: int) -> KeyConfig:
    return KeyConfig(id="k", sha256="0" * 64, **limits)


def _refusal(rates: LocalRates, key: KeyConfig, tokens: int) -> APIError:
    with pytest.raises(APIError) as exc:
        asyncio.run(rates.admit(key, tokens))
    assert exc.value.status == 429 and exc.value.code == "rate_limit_exceeded"
    return exc.value


def test_rpm_refuses_until_the_window_ends_and_says_when():
    now = [600.0 + 45.5]  # 45.5 s into a window
    rates, key = LocalRates(lambda: now[0]), _key(rpm=2)
    for _ in range(2):
        asyncio.run(rates.admit(key, 5))
    err = _refusal(rates, key, 5)
    assert err.headers["retry-after"] == "15" and "2 of 2 requests this minute" in err.message
    now[0] = 660.0  # the next window
    asyncio.run(rates.admit(key, 5))
    assert rates.used("k") == (1, 5)


def test_tpm_counts_the_estimate_then_the_actual_tokens():
    now = [0.0]
    rates, key = LocalRates(lambda: now[0]), _key(tpm=100)
    charge = asyncio.run(rates.admit(key, 30))
    assert rates.used("k") == (1, 30)
    rates.settle(charge, 90)  # it used 90 tokens in all
    assert rates.used("k") == (1, 90)
    rates.settle(charge, 10)  # settled once only
    assert rates.used("k") == (1, 90)
    err = _refusal(rates, key, 20)
    assert "90 of 100 tokens" in err.message
    asyncio.run(rates.admit(key, 10))  # what fits is admitted


def test_a_prompt_larger_than_tpm_is_admitted_into_an_empty_window():
    """Else it could never be served; the next request waits for the next window."""
    rates, key = LocalRates(lambda: 0.0), _key(tpm=100)
    asyncio.run(rates.admit(key, 500))
    _refusal(rates, key, 1)


def test_keys_without_limits_are_not_counted():
    assert not LocalRates.limits(_key()) and not LocalRates.limits(None)
    assert LocalRates.limits(_key(rpm=1)) and LocalRates.limits(_key(tpm=1))


def test_the_gateway_refuses_a_key_over_its_rpm_and_records_it(gateway_factory, standins):
    gw = gateway_factory({"keys": [{"id": "one", "sha256": hash_key(KEY), "rpm": 2},
                                   {"id": "two", "sha256": hash_key(OTHER_KEY)}]})
    assert [name for name, _ in gw.gateway.stages][:3] == ["admit", "parse", "ratelimit"]
    first = gw.gateway.rates._clock() // RATE_WINDOW
    answers = [gw.chat(MATH_PROMPT) for _ in range(5)]
    windows = gw.gateway.rates._clock() // RATE_WINDOW - first + 1
    served = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(served) <= 2 * windows and len(served) + len(refused) == 5
    assert all(1 <= int(r.headers["retry-after"]) <= RATE_WINDOW for r in refused)
    assert gw.chat(MATH_PROMPT, key=OTHER_KEY).status_code == 200  # another key: its own
    gw.flush()
    rows = [r for r in gw.gateway.store.recent_requests(20) if r.key_id == "one"]
    assert sorted(r.http_status for r in rows) == sorted(r.status_code for r in answers)


def test_a_gateway_without_rate_limited_keys_has_no_rate_stage(gateway):
    assert "ratelimit" not in [name for name, _ in gateway.gateway.stages]

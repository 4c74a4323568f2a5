"""Spend limits hold under concurrent long answers, and a key with budget left is not refused.

The stand-in answers with as many completion tokens as it is told, stopping at the request's
``max_tokens`` like a real backend; the key's spend is read back from the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, wait_for

from polyroute.config import KeyConfig
from polyroute.gateway import hash_key
from polyroute.gateway.errors import APIError
from polyroute.gateway.spend import MIN_ANSWER_TOKENS, SpendTracker

#: alpha's list prices ($ per Mtok) in the gateway test world, and the stand-in's prompt tokens
#: (which match the gateway's estimate of MATH_PROMPT: ceil(38 / 4)).
IN_PRICE, OUT_PRICE, PROMPT_TOKENS = 1.0, 4.0, math.ceil(len(MATH_PROMPT) / 4)
WAVE = 32


def _cost(completion_tokens: int, prompt_tokens: int = PROMPT_TOKENS) -> float:
    return (prompt_tokens * IN_PRICE + completion_tokens * OUT_PRICE) / 1e6


@pytest.fixture
def alpha(standins) -> Iterator:
    yield standins["alpha"]
    standins["alpha"].completion_tokens = None


def _gateway(gateway_factory, limit: float, **ceilings):
    return gateway_factory({"keys": [{"id": "one", "sha256": hash_key(KEY), "spend_limit": limit,
                                      "spend_period": "day"},
                                     {"id": "two", "sha256": hash_key(OTHER_KEY)}],
                            "ceilings": {"min_samples": 10, "window": 50, **ceilings}},
                           backends={"alpha": {"timeout": 60, "max_output_tokens": 2500}})


def _wave(gw, alpha, n: int = WAVE, **body) -> list[int]:
    """``n`` requests of key one to alpha, every other one streamed, all in flight at once: alpha
    holds each until every request has either reached it or been refused."""
    before = alpha.calls
    alpha.mode = "hold"
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(gw.chat, MATH_PROMPT, "alpha", stream=i % 2 == 1, **body)
                   for i in range(n)]
        wait_for(lambda: alpha.calls - before + sum(f.done() for f in futures) >= n,
                 "every request to reach alpha or be refused")
        alpha.gate.set()
        responses = [f.result() for f in futures]
    alpha.gate.clear()
    alpha.mode = "ok"
    for r in responses:
        assert r.status_code in (200, 429), r.text
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "spend_limit_exceeded"
    spend = gw.gateway.spend
    wait_for(lambda: spend.in_flight("one") == 0, "every request of the wave to finish")
    return [r.status_code for r in responses]


def _recorded_spend(gw) -> float:
    gw.flush()
    return gw.gateway.store.spend_by_key(None).get("one", 0.0)


# -- SpendTracker.reserve_answer -----------------------------------------------------------------
def test_the_gateways_cap_is_the_ceiling_or_what_the_remainder_pays_for():
    key = KeyConfig(id="k", sha256="0" * 64, spend_limit=1.0, spend_period="total")
    tracker = SpendTracker([key])

    def cost(tokens: int) -> float:  # binary fractions: the arithmetic below is exact
        return (1 + tokens) / 1024

    held, cap = tracker.reserve_answer(key, cost, 300)
    assert cap == 300 and held.amount == cost(300)
    tracker.add("k", 0.5)
    second, cap = tracker.reserve_answer(key, cost, 300)  # 1 - 0.5 - 301/1024 = 211/1024 left
    assert cap == 210 and second.amount == 211 / 1024
    assert tracker.spent("k") + tracker.reserved("k") == 1.0
    with pytest.raises(APIError) as exc:  # nothing left beside the others
        tracker.reserve_answer(key, cost, 300)
    assert exc.value.status == 429 and exc.value.code == "spend_limit_exceeded"
    tracker.release(held)
    tracker.release(second)
    tracker.add("k", 0.49)
    # Alone with $0.01 left (9 tokens' worth): a minimal answer, as a sequential client could.
    lone, cap = tracker.reserve_answer(key, cost, 300)
    assert cap == MIN_ANSWER_TOKENS and lone.amount == cost(MIN_ANSWER_TOKENS)
    with pytest.raises(APIError):  # beside it: refused
        tracker.reserve_answer(key, cost, 300)
    tracker.release(lone)
    tracker.add("k", 0.02)
    with pytest.raises(APIError):  # used up: refused even alone
        tracker.reserve_answer(key, cost, 300)
    assert tracker.in_flight("k") == 0
    free = KeyConfig(id="f", sha256="1" * 64)
    assert tracker.reserve_answer(free, cost, 300) == (None, None)


def test_a_tiny_learnt_ceiling_still_allows_a_minimal_answer():
    key = KeyConfig(id="k", sha256="0" * 64, spend_limit=1.0, spend_period="total")
    tracker = SpendTracker([key])
    _, cap = tracker.reserve_answer(key, lambda t: t * 1e-6, 2)
    assert cap == MIN_ANSWER_TOKENS


# -- end to end ----------------------------------------------------------------------------------
@pytest.mark.parametrize("answer_tokens, body", [
    (900, {}),  # long answers, shorter than the learnt ceiling
    (2000, {}),  # longer than the learnt ceiling: stopped at the cap, and the ceiling grows
    (2000, {"max_tokens": 2000}),  # the client's own cap
], ids=["below-ceiling", "above-ceiling", "client-max-tokens"])
def test_concurrent_long_answers_end_within_one_requests_ceiling_of_the_limit(
        gateway_factory, alpha, answer_tokens, body):
    limit = 0.05
    gw = _gateway(gateway_factory, limit)
    # Answers recorded for alpha (from an unlimited key) teach its ceiling: 1200 tokens.
    alpha.completion_tokens = 1200
    for _ in range(10):
        assert gw.chat(MATH_PROMPT, "alpha", key=OTHER_KEY).status_code == 200
    assert "max_tokens" not in alpha.requests[-1]  # an unlimited key's body is untouched
    assert gw.gateway.ceilings.ceiling("alpha") == 1200

    alpha.completion_tokens = answer_tokens
    waves = []
    while not waves or 200 in waves[-1]:
        assert len(waves) < 12, f"the key was never refused: {waves}"
        waves.append(_wave(gw, alpha, **body))
    assert waves[0].count(200) > 1, waves  # requests ran side by side
    assert any(429 in w for w in waves)

    spent = _recorded_spend(gw)
    assert spent == pytest.approx(gw.gateway.spend.spent("one"))
    # One request's ceiling: its cap — the client's, or the largest the gateway may send.
    one_request = _cost(body.get("max_tokens", 2500))
    assert spent <= limit + one_request, (spent, waves)
    assert spent >= limit * (1 - 1e-9), (spent, waves)  # refused only once used up
    if not body:  # the gateway capped every answer: at most a lone minimal answer over
        assert spent <= limit + _cost(MIN_ANSWER_TOKENS), (spent, waves)
        sent = [r.get("max_tokens") for r in alpha.requests[10:]]
        assert all(isinstance(t, int) and MIN_ANSWER_TOKENS <= t <= 2500 for t in sent)


def test_a_key_with_budget_left_is_not_refused_under_concurrency(gateway_factory, alpha):
    limit = 0.02
    gw = _gateway(gateway_factory, limit)
    spend, ceilings = gw.gateway.spend, gw.gateway.ceilings
    # The key's own short answers (20 tokens) teach alpha's ceiling.
    alpha.completion_tokens = 20
    for _ in range(10):
        assert gw.chat(MATH_PROMPT, "alpha").status_code == 200
    for _ in range(2):
        ceiling = ceilings.ceiling("alpha")
        # The premise: what is spent plus a whole wave in flight at the ceiling fits the limit.
        assert spend.spent("one") + WAVE * _cost(ceiling) < limit
        statuses = _wave(gw, alpha)
        assert statuses == [200] * WAVE
    assert _recorded_spend(gw) == pytest.approx((10 + 2 * WAVE) * _cost(20))


def test_the_cap_goes_in_the_field_the_client_used_and_a_bad_cap_is_refused(
        gateway_factory, alpha):
    gw = _gateway(gateway_factory, 1.0)
    assert gw.chat(MATH_PROMPT, "alpha", max_completion_tokens=None).status_code == 200
    sent = alpha.requests[-1]
    assert sent["max_completion_tokens"] == 256 and "max_tokens" not in sent
    assert gw.chat(MATH_PROMPT, "alpha", max_tokens=40).status_code == 200
    assert alpha.requests[-1]["max_tokens"] == 40  # the client's own cap is kept
    r = gw.chat(MATH_PROMPT, "alpha", max_tokens=0)
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


def test_the_reservation_counts_the_whole_prompt_not_only_the_routed_text(
        gateway_factory, alpha):
    gw = _gateway(gateway_factory, 1.0)
    spend = gw.gateway.spend
    system = "You are a careful assistant. " * 200
    alpha.mode = "hold"
    with ThreadPoolExecutor(1) as pool, gw.client() as c:
        held = pool.submit(c.post, "/v1/chat/completions", json={
            "model": "alpha", "max_tokens": 100,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": MATH_PROMPT}]})
        wait_for(lambda: alpha.calls == 1, "alpha to hold the request")
        reserved = spend.reserved("one")
        alpha.gate.set()
        assert held.result().status_code == 200
    prompt = math.ceil((len(system) + len(MATH_PROMPT)) / 4)
    assert reserved == pytest.approx(_cost(100, prompt))


def test_a_streamed_reservation_is_settled_when_the_upstream_ends_not_when_the_client_reads(
        gateway_factory, alpha):
    gw = _gateway(gateway_factory, 1.0)
    spend = gw.gateway.spend
    alpha.completion_tokens = 300
    with gw.client() as c, c.stream("POST", "/v1/chat/completions", json={
            "model": "alpha", "stream": True,
            "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
        assert r.status_code == 200
        # The client has read nothing of the body yet; the answer is complete upstream.
        wait_for(lambda: spend.in_flight("one") == 0, "the stream's reservation to be settled")
        assert spend.reserved("one") == 0.0
        assert spend.spent("one") == pytest.approx(_cost(256))  # capped at the default ceiling
        assert b"[DONE]" in r.read()

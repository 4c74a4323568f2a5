"""Weighing a move off the pinned model: estimated gain against the priced cache loss."""

from __future__ import annotations

import pytest

from polyroute.conversations import CacheLossModel, CachePrices, cannot_pay, weigh
from polyroute.store import Candidate

PRICES = {"big": CachePrices(1.0, 0.1), "small": CachePrices(1.0, 0.1),
          "nocache": CachePrices(1.0, None)}
CACHE = CacheLossModel(min_cached_tokens=0)


def cands(big=(0.5, 1e-4), small=(0.9, 1e-4)):
    return [Candidate("small", *small), Candidate("big", *big)]


def test_prefix_cost_warm_cold_and_below_the_cacheable_length():
    p = CachePrices(2.0, 0.2)
    assert CACHE.prefix_cost(1_000_000, p, warm=True) == pytest.approx(0.2)
    assert CACHE.prefix_cost(1_000_000, p, warm=False) == pytest.approx(2.0)
    assert CacheLossModel(0, hit_rate=0.5).prefix_cost(1_000_000, p, warm=True) == \
        pytest.approx(1.1)
    assert CacheLossModel(0, write_multiplier=1.25).prefix_cost(1_000_000, p, warm=False) == \
        pytest.approx(2.5)
    assert CacheLossModel(2048).prefix_cost(1000, p, warm=True) == pytest.approx(0.002)
    assert CACHE.prefix_cost(10, CachePrices(2.0, None), warm=True) == pytest.approx(2e-5)


def test_a_short_conversation_moves_for_the_gain():
    v = weigh("big", cands(), lam=1.0, cost_scale=1e-3, prefix_tokens=100, prices=PRICES,
              cache=CACHE)
    # gain 0.4 against λ × $0.00009 / $0.001 = 0.09
    assert v.moved and v.model == "small" and v.gain == pytest.approx(0.4)
    assert v.cache_loss_usd == pytest.approx(9e-5)


def test_a_long_conversation_stays_when_the_cache_loss_outweighs_the_gain():
    v = weigh("big", cands(), lam=1.0, cost_scale=1e-3, prefix_tokens=10_000, prices=PRICES,
              cache=CACHE)
    # λ × $0.009 / $0.001 = 9 quality points > 0.4
    assert not v.moved and v.model == "big" and v.alternative == "small"
    assert "does not pay" in v.reason


def test_at_lambda_zero_any_gain_moves_and_the_margin_holds_it_back():
    kw = dict(cost_scale=1e-3, prefix_tokens=10**6, prices=PRICES, cache=CACHE)
    assert weigh("big", cands(), lam=0.0, **kw).moved
    assert weigh("big", cands(), lam=0.0, **kw).gain_usd is None
    assert not weigh("big", cands(), lam=0.0, min_gain=0.5, **kw).moved


def test_no_gain_keeps_the_pin():
    v = weigh("big", cands(big=(0.9, 1e-4), small=(0.8, 1e-4)), lam=0.0, cost_scale=1e-3,
              prefix_tokens=0, prices=PRICES, cache=CACHE)
    assert not v.moved and v.model == "big"


def test_each_alternative_is_priced_with_its_own_cache():
    """Moving to a backend without a prompt cache costs the same fresh read as moving to a cold
    cached one; equal quality, so the cheaper turn wins."""
    c = [Candidate("big", 0.5, 1e-4), Candidate("small", 0.9, 1e-4),
         Candidate("nocache", 0.9, 0.0)]
    v = weigh("big", c, lam=1.0, cost_scale=1e-3, prefix_tokens=100, prices=PRICES,
              cache=CACHE)
    assert v.moved and v.model == "nocache"  # the same loss, a cheaper turn


def test_a_pinned_model_without_estimates_is_kept():
    v = weigh("big", [Candidate("big"), Candidate("small", 0.9, 1e-4)], lam=1.0,
              cost_scale=1e-3, prefix_tokens=0, prices=PRICES, cache=CACHE)
    assert not v.moved


def test_cannot_pay_is_an_upper_bound_of_weigh():
    costs = {"big": 1e-4, "small": 1e-4}
    kw = dict(lam=1.0, cost_scale=1e-3, prices=PRICES, cache=CACHE)
    assert cannot_pay("big", ["big", "small"], costs, prefix_tokens=10_000, **kw)
    assert not cannot_pay("big", ["big", "small"], costs, prefix_tokens=100, **kw)
    assert not cannot_pay("big", ["big", "small"], costs, prefix_tokens=10**6, lam=0.0,
                          cost_scale=1e-3, prices=PRICES, cache=CACHE)
    # Whenever cannot_pay holds, no estimates in [0, 1] would move it.
    for q_small in (0.0, 0.5, 1.0):
        assert not weigh("big", cands(big=(0.0, 1e-4), small=(q_small, 1e-4)),
                         prefix_tokens=10_000, **kw).moved

"""Client keys (hashed lookup) and spend limits per period."""

from __future__ import annotations

import datetime as dt

import pytest

from polyroute.config import KeyConfig
from polyroute.gateway.auth import KeyRing, hash_key, new_key
from polyroute.gateway.errors import APIError
from polyroute.gateway.spend import SpendTracker, period_start


def test_keys_are_random_and_found_by_digest():
    a, b = new_key(), new_key()
    assert a != b and a.startswith("pr-") and len(a) > 40
    ring = KeyRing([KeyConfig(id="a", sha256=hash_key(a))], required=True)
    assert ring.authenticate(f"Bearer {a}").id == "a"
    assert ring.authenticate(f"bearer   {a}").id == "a"
    for header in (None, "", f"Bearer {b}", a, "Token x"):
        with pytest.raises(APIError) as exc:
            ring.authenticate(header)
        assert exc.value.status == 401


def test_optional_auth_lets_anonymous_requests_in():
    ring = KeyRing([], required=False)
    assert ring.authenticate(None) is None
    with pytest.raises(APIError):
        ring.authenticate("Bearer unknown")


def test_period_start_is_utc_midnight_or_first_of_month():
    t = dt.datetime(2026, 3, 17, 15, 30, tzinfo=dt.UTC).timestamp()
    assert period_start("total", t) is None
    assert period_start("day", t) == dt.datetime(2026, 3, 17, tzinfo=dt.UTC).timestamp()
    assert period_start("month", t) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()


def test_spend_limit_applies_within_its_period_and_resets():
    now = [dt.datetime(2026, 3, 17, 23, 0, tzinfo=dt.UTC).timestamp()]
    key = KeyConfig(id="k", sha256="0" * 64, spend_limit=1.0, spend_period="day")
    free = KeyConfig(id="f", sha256="1" * 64)
    tracker = SpendTracker([key, free], clock=lambda: now[0])
    tracker.add("k", 0.6)
    tracker.check(key)
    tracker.add("k", 0.6)
    with pytest.raises(APIError) as exc:
        tracker.check(key)
    assert exc.value.status == 429
    tracker.add("f", 100.0)
    tracker.check(free)  # no limit
    tracker.check(None)
    now[0] += 2 * 3600  # next UTC day
    tracker.check(key)
    assert tracker.spent("k") == 0.0

"""Request checking: fields the gateway relies on, and per-request preferences."""

from __future__ import annotations

import pytest

from polyroute.gateway.body import parse_chat, parse_preference
from polyroute.gateway.errors import APIError
from polyroute.policies import Preference


def chat(**extra):
    return {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": "question"}], **extra}


def test_routing_text_is_the_user_turn_and_extension_is_removed():
    req = parse_chat(chat(polyroute={"lam": 2}, temperature=0), {})
    assert req.text == "question" and req.preference == Preference(lam=2.0)
    assert "polyroute" not in req.body and req.body["temperature"] == 0
    assert not req.stream and not req.wants_usage


def test_stream_and_usage_flags():
    req = parse_chat(chat(stream=True, stream_options={"include_usage": True}), {})
    assert req.stream and req.wants_usage


def test_headers_give_a_preference_and_the_body_wins():
    assert parse_preference(None, {"x-polyroute-floor": "0.7"}) == Preference(floor=0.7)
    assert parse_preference({"budget": 0.01}, {"x-polyroute-floor": "0.7"}) == \
        Preference(budget=0.01)
    assert parse_preference(None, {}) is None
    assert parse_preference({"lam": None}, {}) is None


@pytest.mark.parametrize("ext, headers", [
    ({"lam": "x"}, {}), ({"lam": float("nan")}, {}), ({"budget": -1}, {}), ({"floor": 1.5}, {}),
    ({"lam": True}, {}), ("fast", {}), (None, {"x-polyroute-lambda": "-2"}),
    (None, {"x-polyroute-lambda": "1", "x-polyroute-floor": "0.5"}),
])
def test_impossible_preferences_are_400(ext, headers):
    with pytest.raises(APIError) as exc:
        parse_preference(ext, headers)
    assert exc.value.status == 400

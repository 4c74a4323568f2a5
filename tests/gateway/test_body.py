"""Request checking: fields the gateway relies on, and per-request preferences."""

from __future__ import annotations

import pytest

from polyroute.gateway.body import MAX_DEPTH, parse_chat, parse_object, parse_preference
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


def _refused(raw: bytes) -> APIError:
    with pytest.raises(APIError) as exc:
        parse_object(raw)
    assert exc.value.status == 400
    return exc.value


def test_nesting_is_capped_at_max_depth():
    def nested(depth: int) -> bytes:
        return b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    assert parse_object(nested(MAX_DEPTH))["a"]
    for depth in (MAX_DEPTH + 1, 1000, 200_000):
        err = _refused(nested(depth))
        assert err.param is None and f"nested deeper than {MAX_DEPTH} levels" in err.message
    # Brackets inside strings are text, not nesting.
    assert parse_object(b'{"a": "' + b"[" * 5000 + b'"}')["a"] == "[" * 5000


@pytest.mark.parametrize("raw", [b'{"t": NaN}', b'{"t": Infinity}', b'{"t": [-Infinity]}'])
def test_nan_and_infinity_literals_are_not_json(raw):
    assert "not valid JSON" in _refused(raw).message


def test_a_number_too_large_for_a_float_is_refused():
    err = _refused(b'{"t": [1, 1e999]}')
    assert err.param == "t[1]" and "finite" in err.message


@pytest.mark.parametrize("raw, param", [
    (b'{"model": "\\ud800"}', "model"),
    (b'{"messages": [{"content": [{"text": "ok \\udfff"}]}]}', "messages[0].content[0].text"),
    (b'{"m": {"\\udbff": 1}}', "m"),
    (b'{"\\ud800": 1}', None),
])
def test_a_lone_surrogate_is_refused_naming_its_field(raw, param):
    err = _refused(raw)
    assert err.param == param and "lone surrogate" in err.message
    assert err.message.isascii()  # the message itself can be stored and sent as UTF-8


def test_a_surrogate_pair_is_ordinary_text():
    assert parse_object(b'{"t": "\\ud83d\\ude00"}')["t"] == "\U0001F600"


def test_parse_chat_checks_fields_as_openai_does():
    with pytest.raises(APIError) as exc:
        parse_chat(chat(max_tokens=10 ** 400), {})
    assert exc.value.param == "max_tokens" and exc.value.code == "integer_above_max_value"
    with pytest.raises(APIError) as exc:
        parse_chat({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": 3}]}]}, {})
    assert exc.value.param == "messages[0].content[0].text"

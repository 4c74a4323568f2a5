"""orjson on the request path reads and writes exactly what ``json`` would."""

from __future__ import annotations

import json

import pytest

from polyroute.gateway import fastjson


@pytest.mark.parametrize("raw", [
    b'{"seed": 123456789012345678901234567890}',  # beyond 64 bits: orjson alone makes a float
    b'{"seed": -9223372036854775809, "n": 18446744073709551615}',
    '\ufeff{"a": 1}'.encode(),                      # a byte-order mark
    '{"a": "é"}'.encode("utf-16"),                  # json detects UTF-16; orjson refuses it
    b'{"a": 1, "a": 2, "b": [1.5, -0.0, 1e16, "\\u00e9"]}',
])
def test_loads_agrees_with_json(raw):
    got = fastjson.loads(raw)
    assert got == json.loads(raw)
    assert repr(got) == repr(json.loads(raw))  # same types: an int stays an int


def test_loads_hands_constants_to_parse_constant():
    def refuse(name):
        raise ValueError(f"{name} refused")

    with pytest.raises(ValueError, match="NaN refused"):
        fastjson.loads(b'{"a": NaN}', parse_constant=refuse)


def test_dumps_writes_what_json_writes():
    value = {"model": "m", "messages": [{"role": "user", "content": "é \u2028 \"q\""}],
             "seed": 2 ** 70, "t": 0.1, "n": None, "ok": True}
    assert fastjson.dumps(value) == json.dumps(value, ensure_ascii=False,
                                               separators=(",", ":")).encode()

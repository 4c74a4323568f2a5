"""Property-based fuzzing of the gateway's request edge (hypothesis, bounded and derandomised).

Bodies are mostly the right shape with hostile leaves — lone surrogates, 400-digit integers, NaN
and infinities, nesting far past the cap, wrong types, missing fields — plus raw bytes and bad
preference headers. Whatever arrives: no 5xx, every error OpenAI-shaped, the gateway still
serves afterwards, and every request that got past authentication has exactly one finished row.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from gateway_world import KEY, MATH_PROMPT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyroute.gateway import hash_key

#: Examples per test; three tests, about 150 requests in all.
CHAT_EXAMPLES, RAW_EXAMPLES, FEEDBACK_EXAMPLES = 80, 35, 35
_SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])
_DEEP = "__deep_{}__"
_MARKER = re.compile(rb'"__deep_(\d+)__"')

surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1,
                     max_size=3)
hostile = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), surrogates,
                                    st.text(max_size=5)),
    st.integers(60, 3000).map(_DEEP.format),  # replaced by that many nested arrays
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=2),
)


def mostly(valid: st.SearchStrategy[Any], odds: int = 8) -> st.SearchStrategy[Any]:
    """``valid``, but a hostile leaf one time in ``odds``: most chat bodies get deep enough to
    reach routing, serving and the spend reservation, not just the first field's check."""
    return st.integers(1, odds).flatmap(lambda i: hostile if i == 1 else valid)


text_parts = st.lists(st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["text", "image_url"]))},
    optional={"text": mostly(st.text(max_size=30)), "image_url": hostile}), max_size=3)
messages = mostly(st.lists(st.fixed_dictionaries(
    {"role": mostly(st.sampled_from(["user", "assistant", "system", "tool"]))},
    optional={"content": mostly(st.text(max_size=40) | text_parts),
              "tool_calls": mostly(st.lists(st.fixed_dictionaries(
                  {"id": st.text(max_size=5), "type": st.just("function"),
                   "function": st.fixed_dictionaries({"name": st.text(max_size=5)})}),
                  max_size=1)),
              "name": mostly(st.text(max_size=5))}), min_size=1, max_size=3))

#: Plausible values for the fields the gateway checks, each also given hostile ones.
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "n": st.integers(1, 3),
    "max_tokens": st.integers(1, 10 ** 7), "max_completion_tokens": st.integers(1, 64),
    "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2),
    "seed": st.integers(-5, 5), "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "stop": st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=5),
    "tools": st.lists(st.fixed_dictionaries({"type": st.just("function")}), max_size=2),
    "tool_choice": st.sampled_from(["auto", "none"]), "user": st.text(max_size=10),
    "polyroute": st.fixed_dictionaries({}, optional={"lam": mostly(st.floats(0, 5))}),
    "brand_new_param": hostile,
}
chat_bodies = st.fixed_dictionaries(
    {"model": mostly(st.sampled_from(["polyroute-auto", "polyroute-cheap",
                                      "polyroute-cascade", "alpha", "gamma"])),
     "messages": messages},
    optional={name: mostly(values) for name, values in _FIELDS.items()})
preference_headers = st.dictionaries(
    st.sampled_from(["x-polyroute-lambda", "x-polyroute-floor", "x-polyroute-budget"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=8), max_size=2)


def encode(body: Any) -> bytes:
    """JSON with ASCII escapes (a lone surrogate travels as ``\\ud800``), NaN literals allowed,
    and each deep marker replaced by that many nested arrays."""
    return _MARKER.sub(lambda m: b"[" * int(m[1]) + b"]" * int(m[1]),
                       json.dumps(body, allow_nan=True).encode())


raw_bodies = st.one_of(
    st.binary(max_size=120),
    st.builds(lambda body, cut: encode(body)[:cut], chat_bodies, st.integers(0, 200)),
    st.builds(lambda body, junk: encode(body).replace(b'"', junk, 1), chat_bodies,
              st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\\", b"[" * 2000])),
)


def _check_answer(r) -> None:
    """No 5xx; an error is OpenAI's shape; a success is JSON or an SSE stream."""
    assert r.status_code < 500, r.text
    if r.status_code >= 300:
        assert r.headers["content-type"].startswith("application/json"), r.text
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert isinstance(error["message"], str) and isinstance(error["type"], str)
        assert error["param"] is None or isinstance(error["param"], str)
        assert error["code"] is None or isinstance(error["code"], str)
    elif r.headers["content-type"].startswith("text/event-stream"):
        assert r.content.endswith(b"data: [DONE]\n\n")
    else:
        assert isinstance(r.json(), dict)


def _fuzz_gateway(gateway_factory):
    """Every serving path: plain, cascade, and a key with a spend limit (the reservation)."""
    return gateway_factory({
        "profiles": {"polyroute-cascade": {"policy": {"kind": "cascade", "threshold": 0.2,
                                                      "lam": 0.1, "scorer": "heuristic"}}},
        "keys": [{"id": "one", "sha256": hash_key(KEY), "spend_limit": 1000.0,
                  "spend_period": "day"}]})


def _assert_one_finished_row_each(gw, ids: list[str]) -> None:
    gw.flush()
    assert len(set(ids)) == len(ids)
    with sqlite3.connect(gw.config.store.path) as conn:
        rows = dict(conn.execute("SELECT id, status FROM requests").fetchall())
    assert sorted(rows) == sorted(ids), "a request has no row, or a row no request"
    assert "in_progress" not in rows.values()
    assert gw.gateway.store.failed_writes == 0


def _still_serves(gw) -> str:
    r = gw.chat(MATH_PROMPT)
    assert r.status_code == 200, r.text
    return r.headers["x-polyroute-request-id"]


def test_fuzzed_chat_bodies(gateway_factory, standins):
    gw = _fuzz_gateway(gateway_factory)
    ids: list[str] = []
    with gw.client() as c:

        @settings(max_examples=CHAT_EXAMPLES, **_SETTINGS)
        @given(body=chat_bodies, headers=preference_headers)
        def probe(body: dict[str, Any], headers: dict[str, str]) -> None:
            r = c.post("/v1/chat/completions", content=encode(body),
                       headers={"content-type": "application/json", **headers})
            ids.append(r.headers["x-polyroute-request-id"])
            _check_answer(r)

        probe()
    ids.append(_still_serves(gw))
    _assert_one_finished_row_each(gw, ids)


def test_fuzzed_raw_bodies(gateway_factory, standins):
    gw = _fuzz_gateway(gateway_factory)
    ids: list[str] = []
    with gw.client() as c:

        @settings(max_examples=RAW_EXAMPLES, **_SETTINGS)
        @given(raw=raw_bodies)
        def probe(raw: bytes) -> None:
            r = c.post("/v1/chat/completions", content=raw,
                       headers={"content-type": "application/json"})
            ids.append(r.headers["x-polyroute-request-id"])
            _check_answer(r)

        probe()
    ids.append(_still_serves(gw))
    _assert_one_finished_row_each(gw, ids)


def test_fuzzed_feedback(gateway, standins):
    rid = _still_serves(gateway)
    ids = [rid]
    bodies = st.fixed_dictionaries(
        {"request_id": mostly(st.just(rid), 3), "score": mostly(st.floats(0, 1), 3)},
        optional={"comment": mostly(st.text(max_size=20), 2), "extra": hostile})
    with gateway.client() as c:

        @settings(max_examples=FEEDBACK_EXAMPLES, **_SETTINGS)
        @given(body=bodies)
        def probe(body: Any) -> None:
            r = c.post("/v1/feedback", content=encode(body),
                       headers={"content-type": "application/json"})
            _check_answer(r)
            if r.status_code == 200:
                assert r.json()["request_id"] == rid

        probe()
    ids.append(_still_serves(gateway))
    _assert_one_finished_row_each(gateway, ids)

"""SemanticCache: thresholds, TTL, quota, key scoping, the parameter fingerprint, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.cache import SemanticCache, cache_key, fingerprint, literals
from polyroute.config import CacheConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sink:
    """Keeps what the cache persists, as a store would."""

    def __init__(self) -> None:
        self.rows: dict[int, object] = {}

    def put_cached_answer(self, entry) -> None:
        self.rows[entry.id] = entry

    def delete_cached_answers(self, ids) -> None:
        for i in ids:
            self.rows.pop(i, None)


def _body(text: str, **params) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **params}


def _key(text: str = "q", *, scope: str = "key:a", category: str = "default", **params):
    return cache_key(scope=scope, profile="auto", category=category, body=_body(text, **params))


def _vec(angle: float) -> np.ndarray:
    """A unit vector whose cosine with ``_vec(0)`` is cos(angle)."""
    return np.array([np.cos(angle), np.sin(angle), 0.0], dtype=np.float32)


def _cache(**config) -> tuple[SemanticCache, Clock, Sink]:
    clock, sink = Clock(), Sink()
    return SemanticCache(CacheConfig(enabled=True, **config), sink=sink, clock=clock), clock, \
        sink


def _cats(**cats) -> dict:
    return {"categories": cats, "default_category": next(iter(cats))}


def test_exact_lookup_needs_no_embedding():
    cache, _, _ = _cache()
    cache.put(_key("What is 2+2?"), "What is 2+2?", _vec(0), b"four", model="m", cost=0.01)
    hit = cache.exact(_key("What is 2+2?"))
    assert hit is not None and hit.exact and hit.answer == b"four" and hit.cost == 0.01
    assert cache.exact(_key("What is 2+3?")) is None


def test_nearest_hits_only_within_the_category_threshold():
    cache, _, _ = _cache(**_cats(default={"threshold": 0.9}))
    cache.put(_key("a"), "tell me a joke", _vec(0), b"joke", model="m", cost=0.01)
    near = cache.nearest(_key("b"), "tell me a joke please", _vec(np.arccos(0.95)))
    assert near is not None and not near.exact and near.similarity == pytest.approx(0.95)
    assert cache.nearest(_key("c"), "tell me a story", _vec(np.arccos(0.85))) is None


def test_each_category_has_its_own_threshold_and_entries():
    cache, _, _ = _cache(**_cats(default={"threshold": 0.99}, chat={"threshold": 0.8}))
    for category in ("default", "chat"):
        key = _key("a", category=category)
        cache.put(key, "hello there", _vec(0), category.encode(), model="m", cost=0)
    probe = _vec(np.arccos(0.9))
    assert cache.nearest(_key("b", category="default"), "hello", probe) is None
    assert cache.nearest(_key("b", category="chat"), "hello", probe).answer == b"chat"
    assert cache.category("chat") == "chat"
    assert cache.category("unknown") == cache.category(None) == "default"


def test_the_literal_guard_refuses_a_match_with_other_numbers():
    cache, _, _ = _cache()
    text = "Solve 7x + 3 = 24 for x."
    cache.put(_key(text), text, _vec(0), b"x=3", model="m", cost=0)
    changed = "Solve 7x + 3 = 25 for x."
    assert cache.nearest(_key(changed), changed, _vec(0)) is None
    assert cache.nearest(_key("p"), "solve 7x+3 = 24 for x", _vec(0)) is not None
    unguarded, _, _ = _cache(literal_guard=False)
    unguarded.put(_key(text), text, _vec(0), b"x=3", model="m", cost=0)
    assert unguarded.nearest(_key(changed), changed, _vec(0)) is not None
    assert literals("between 7 and 2.5 or 1,000") == ("1,000", "2.5", "7")


def test_entries_expire_after_their_category_ttl():
    cache, clock, sink = _cache(**_cats(default={"ttl_s": 60}))
    first = cache.put(_key("a"), "a", _vec(0), b"A", model="m", cost=0)
    clock.now += 59
    assert cache.exact(_key("a")) is not None
    clock.now += 1
    assert cache.exact(_key("a")) is None and cache.nearest(_key("z"), "a", _vec(0)) is None
    assert first not in sink.rows  # gone from the store too
    cache.put(_key("b"), "b", _vec(1), b"B", model="m", cost=0)
    assert len(cache) == 1


def test_expired_entries_are_dropped_when_new_ones_arrive():
    cache, clock, sink = _cache(**_cats(default={"ttl_s": 10}))
    for i in range(3):
        cache.put(_key(f"q{i}"), f"q{i}", _vec(i), b"x", model="m", cost=0)
    clock.now += 11
    cache.put(_key("new"), "new", _vec(0), b"y", model="m", cost=0)
    assert len(cache) == 1 and len(sink.rows) == 1


def test_the_quota_evicts_the_least_recently_used():
    cache, _, sink = _cache(**_cats(default={"max_entries": 2}))
    cache.put(_key("a"), "a", _vec(0.0), b"A", model="m", cost=0)
    cache.put(_key("b"), "b", _vec(1.0), b"B", model="m", cost=0)
    assert cache.exact(_key("a")) is not None  # a is now the most recently used
    cache.put(_key("c"), "c", _vec(2.0), b"C", model="m", cost=0)
    assert cache.exact(_key("b")) is None
    assert cache.exact(_key("a")) is not None and cache.exact(_key("c")) is not None
    assert sorted(e.text for e in sink.rows.values()) == ["a", "c"]


def test_the_same_request_again_replaces_its_entry():
    cache, _, sink = _cache()
    cache.put(_key("a"), "a", _vec(0), b"old", model="m", cost=0)
    cache.put(_key("a"), "a", _vec(0), b"new", model="m", cost=0)
    assert len(cache) == 1 and len(sink.rows) == 1
    assert cache.exact(_key("a")).answer == b"new"


def test_answers_are_scoped_to_the_client_key_unless_shared():
    private, _, _ = _cache()
    assert private.scope("a") != private.scope("b")
    private.put(_key("a", scope=private.scope("a")), "q", _vec(0), b"A", model="m", cost=0)
    assert private.exact(_key("a", scope=private.scope("b"))) is None
    assert private.nearest(_key("z", scope=private.scope("b")), "q", _vec(0)) is None
    shared, _, _ = _cache(share_across_keys=True)
    assert shared.scope("a") == shared.scope("b") == shared.scope(None)


def test_the_fingerprint_separates_what_changes_an_answer():
    base = fingerprint(_body("q"))
    assert fingerprint(_body("another question")) == base  # the question is not in it
    assert fingerprint(_body("q", temperature=1, top_p=1, n=1)) == base  # defaults = absent
    for params in ({"temperature": 0.2}, {"top_p": 0.5}, {"n": 2}, {"stop": ["\n"]},
                   {"response_format": {"type": "json_object"}}, {"seed": 1},
                   {"tools": [{"type": "function", "function": {"name": "f"}}]},
                   {"tool_choice": "required"}, {"max_tokens": 100}):
        assert fingerprint(_body("q", **params)) != base, params
    assert fingerprint(_body("q", max_tokens=100)) == fingerprint(_body("q", max_tokens=120))
    assert fingerprint(_body("q", max_tokens=100)) != fingerprint(_body("q", max_tokens=200))
    assert fingerprint(_body("q", max_completion_tokens=100)) == \
        fingerprint(_body("q", max_tokens=100))
    assert fingerprint(_body("q", stream=True, user="x")) == base
    system = {"model": "auto", "messages": [{"role": "system", "content": "Reply in French."},
                                            {"role": "user", "content": "q"}]}
    assert fingerprint(system) != base
    assert fingerprint(_body("q"), {"lam": 0.0}) != base


def test_a_reload_from_the_store_restores_the_entries():
    cache, clock, sink = _cache(**_cats(default={"ttl_s": 100, "max_entries": 2}))
    for i, text in enumerate(("a", "b")):
        cache.put(_key(text), text, _vec(i), text.encode(), model="m", cost=0.5)
    clock.now += 50
    restarted = SemanticCache(cache.config, sink=sink, clock=clock)
    assert restarted.load(sorted(sink.rows.values(), key=lambda e: e.id)) == 2
    assert restarted.exact(_key("b")).answer == b"b"
    assert restarted.nearest(_key("z"), "a", _vec(0)).cost == 0.5
    new = restarted.put(_key("c"), "c", _vec(2), b"c", model="m", cost=0)
    assert new > max(e for e in sink.rows if e != new)  # ids keep increasing
    clock.now += 60
    later = SemanticCache(cache.config, sink=sink, clock=clock)
    assert later.load(list(sink.rows.values())) == 1  # a and b expired


def test_entries_of_categories_no_longer_configured_are_dropped_at_load():
    cache, _, sink = _cache(**_cats(default={}, code={}))
    cache.put(_key("a", category="code"), "a", _vec(0), b"A", model="m", cost=0)
    fewer = SemanticCache(CacheConfig(enabled=True), sink=sink)
    assert fewer.load(list(sink.rows.values())) == 0 and not sink.rows


def test_the_literal_guard_refuses_a_match_with_another_name():
    cache, _, _ = _cache()
    text = "The Moon orbits Earth at about one kilometer per second. What keeps it in orbit?"
    cache.put(_key(text), text, _vec(0), b"gravity", model="m", cost=0)
    swapped = text.replace("Earth", "Mars")
    assert cache.nearest(_key(swapped), swapped, _vec(0)) is None
    lowered = "please answer: " + text.lower()
    assert cache.nearest(_key(lowered), lowered, _vec(0)) is not None


def test_a_large_partition_switches_to_the_graph_and_still_finds_and_evicts():
    clock, sink = Clock(), Sink()
    config = CacheConfig(enabled=True, categories={"default": {"max_entries": 30}})
    cache = SemanticCache(config, sink=sink, clock=clock, switch_at=8)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    for i, v in enumerate(vectors):
        cache.put(_key(f"q{i}"), f"question {i}", v, str(i).encode(), model="m", cost=0)
    assert len(cache) == 30 and len(sink.rows) == 30  # the 10 oldest were evicted
    [part] = cache._partitions.values()
    assert part.index.approximate
    assert cache.nearest(_key("z"), "question 35", vectors[35]).answer == b"35"
    assert cache.nearest(_key("z"), "question 3", vectors[3]) is None  # evicted

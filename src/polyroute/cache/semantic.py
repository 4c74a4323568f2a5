"""The semantic cache: a request gets a cached answer when it asks the same thing, under the same
conditions, as one answered before.

"The same conditions" is a *partition*: the client key scope (one key's answers are never given to
another key unless ``share_across_keys``), the profile (the ``model`` field), and a fingerprint of
every parameter that changes what a correct answer looks like — sampling (temperature, top_p, n,
seed, penalties, logit_bias), output shape (tools, tool_choice, functions, response_format, stop,
logprobs), the answer-length cap (bucketed to a power of two: a complete answer under a cap of
600 is complete under 700 too), the client's routing preference (it picks another model), and the
conversation around the question (system prompt, assistant and tool turns, earlier user turns:
"reply in French" changes the answer to the same question). Parameters at their OpenAI defaults
count as absent, so ``temperature: 1`` and no temperature share a partition.

"The same thing" is, within a partition, first the exact request (a hash of its whole message
list: no embedding needed), then the nearest routing text by cosine similarity of embeddings, if
it reaches the category's threshold. Embeddings do not see numbers or names well ("7x + 3 = 24"
and "7x + 3 = 25", "the Moon orbits Earth" and "... orbits Mars" are nearly the same vector), so
with ``literal_guard`` a semantic match must also have the cached prompt's numbers and names
(:class:`Literals`); the benchmark (benchmarks/cache_thresholds.py) measures both.

Each category has a TTL and a size quota; the least recently used entries go first. Answers are
kept in memory (a hit costs no disk read and never races the store's writer) and written to the
store through ``sink``, from which :meth:`SemanticCache.load` rebuilds the index at start.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from polyroute.cache.index import SWITCH_AT, VectorIndex
from polyroute.config import CacheCategoryConfig, CacheConfig
from polyroute.plugins import CACHE_GROUP, instantiate, plugin_class
from polyroute.store.records import CachedAnswer

#: Body fields that change what the answer is, and the value OpenAI assumes when one is absent.
_DEFAULTS: dict[str, Any] = {
    "temperature": 1, "top_p": 1, "n": 1, "presence_penalty": 0, "frequency_penalty": 0,
    "logprobs": False, "tools": None, "tool_choice": None, "functions": None,
    "function_call": None, "response_format": None, "stop": None, "seed": None,
    "logit_bias": None, "top_logprobs": None, "parallel_tool_calls": None,
    "reasoning_effort": None, "modalities": None, "audio": None, "prediction": None,
}
_MAX_TOKENS = ("max_completion_tokens", "max_tokens")
#: Numbers as written ("24", "3.5", "1,000"): what the literal guard compares.
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
#: A name: a capitalised word inside a sentence (after a lower-case word, digit or comma).
_NAME = re.compile(r"(?<=[a-z0-9,;] )[A-Z][A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]+")
#: The user turns the fingerprint leaves to the routing text: the latest, the one
#: ``features.chat_to_text`` always embeds (earlier ones only while they fit its window, so they
#: must be matched exactly here, or two requests differing only in one could share an answer).
_ROUTED_USER_TURNS = 1


def _digest(obj: Any) -> str:
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _bucket(tokens: Any) -> Any:
    """An answer cap rounded up to a power of two (non-integers kept as given)."""
    if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
        return 1 << math.ceil(math.log2(tokens))
    return tokens


def fingerprint(body: Mapping[str, Any], preference: Mapping[str, Any] | None = None) -> str:
    """A hash of everything besides the question that changes what a correct answer is."""
    params = {k: body[k] for k in _DEFAULTS if k in body and body[k] != _DEFAULTS[k]}
    caps = [body[f] for f in _MAX_TOKENS if body.get(f) is not None]
    if caps:
        params["max_tokens"] = _bucket(max(caps, key=lambda c: c if isinstance(c, int) else 0))
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    routed = set(users[-_ROUTED_USER_TURNS:])
    # The conversation around the question: every message but the user turns routed on.
    context = [m for i, m in enumerate(messages) if i not in routed]
    return _digest({"params": params, "context": context,
                    "preference": dict(preference) if preference else None})


def literals(text: str) -> tuple[str, ...]:
    """The numbers written in ``text``, sorted (a reordered sentence keeps them; what an
    embedding barely sees)."""
    return tuple(sorted(_NUMBER.findall(text)))


@dataclass(frozen=True)
class Literals:
    """What the literal guard compares: numbers, names, and every word (lower-cased)."""

    numbers: tuple[str, ...]
    names: frozenset[str]
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Literals:
        return cls(literals(text), frozenset(n.lower() for n in _NAME.findall(text)),
                   frozenset(w.lower() for w in _WORD.findall(text)))

    def agree(self, other: Literals) -> bool:
        """Same numbers, and each text's names appear (in any case) in the other: "the Moon
        orbits Earth" and "the Moon orbits Mars" disagree; a lower-cased rewrite agrees."""
        return self.numbers == other.numbers and self.names <= other.words and \
            other.names <= self.words


@dataclass(frozen=True)
class CacheKey:
    """Where a request's answer is looked up and kept."""

    partition: str
    category: str
    #: The exact request within the partition (its whole message list).
    exact: str


def cache_key(*, scope: str, profile: str, category: str, body: Mapping[str, Any],
              preference: Mapping[str, Any] | None = None, space: str = "") -> CacheKey:
    """``space`` names the embedding space (the featurizer's id): entries embedded by another
    router's featurizer are in another partition, never compared with this one's."""
    partition = _digest({"scope": scope, "profile": profile, "space": space,
                         "fingerprint": fingerprint(body, preference)})
    return CacheKey(partition, category, _digest({"partition": partition,
                                                  "messages": body.get("messages")}))


@dataclass(frozen=True)
class Hit:
    entry_id: int
    answer: bytes
    model: str
    #: What the original request cost: the dollars this hit saves.
    cost: float
    #: 1.0 for an exact match.
    similarity: float
    exact: bool


class AnswerSink(Protocol):
    """Where cached answers persist (the gateway's store)."""

    def put_cached_answer(self, entry: CachedAnswer) -> None: ...

    def delete_cached_answers(self, ids: Sequence[int]) -> None: ...


@dataclass
class _Entry:
    id: int
    key: CacheKey
    text: str
    literals: Literals
    answer: bytes
    model: str
    cost: float
    expires_ts: float


#: What a plugin index backend must have.
_INDEX_API = ("add", "remove", "search", "__len__", "__contains__")


class _Partition:
    def __init__(self, index: Any) -> None:
        self.index = index
        self.exact: dict[str, int] = {}


class SemanticCache:
    """Exact and nearest-embedding lookup of answers, per partition, with per-category limits.

    ``clock`` gives the unix time (tests pass a fake one); ``sink`` persists entries.
    """

    def __init__(self, config: CacheConfig, *, sink: AnswerSink | None = None,
                 clock: Callable[[], float] = time.time, switch_at: int = SWITCH_AT) -> None:
        self.config = config
        self.sink = sink
        self.clock = clock
        self.switch_at = switch_at
        if config.index is not None:  # a plugin backend, checked now rather than at first use
            plugin_class(config.index, CACHE_GROUP, _INDEX_API)
        self._entries: dict[int, _Entry] = {}
        self._partitions: dict[tuple[str, str], _Partition] = {}
        #: Per category: entry ids, least recently used first.
        self._lru: dict[str, OrderedDict[int, None]] = {}
        #: Per category: (expiry, id), for expiring without a scan.
        self._expiry: dict[str, list[tuple[float, int]]] = {}
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._entries)

    def _new_index(self, dim: int) -> Any:
        """One partition's vector index: the configured plugin backend, else the built-in."""
        if self.config.index is None:
            return VectorIndex(dim, switch_at=self.switch_at)
        return instantiate(self.config.index, CACHE_GROUP, _INDEX_API, dim)

    # -- what a request's key is made of ---------------------------------------------------------
    def scope(self, key_id: str | None) -> str:
        """The client-key scope of a request: its key, or everyone's when shared."""
        return "*" if self.config.share_across_keys else f"key:{key_id or ''}"

    def category(self, name: str | None) -> str:
        """The category a request's limits come from: its own if configured, else the default."""
        return name if name is not None and name in self.config.categories \
            else self.config.default_category

    def limits(self, category: str) -> CacheCategoryConfig:
        return self.config.categories[category]

    # -- lookups ---------------------------------------------------------------------------------
    def exact(self, key: CacheKey) -> Hit | None:
        """The answer of exactly this request in its partition, if cached and fresh."""
        part = self._partitions.get((key.category, key.partition))
        entry_id = part.exact.get(key.exact) if part is not None else None
        entry = self._fresh(entry_id)
        return None if entry is None else self._hit(entry, 1.0, exact=True)

    def nearest(self, key: CacheKey, text: str, embedding: np.ndarray, k: int = 4) -> Hit | None:
        """The most similar fresh entry of the partition at or above the category's threshold
        (and, with the literal guard, with the same numbers), else None."""
        part = self._partitions.get((key.category, key.partition))
        if part is None:
            return None
        threshold = self.limits(key.category).threshold
        wanted = Literals.of(text)
        for entry_id, sim in part.index.search(embedding, k):
            if sim < threshold:
                break
            entry = self._fresh(entry_id)
            if entry is None:
                continue
            if self.config.literal_guard and not entry.literals.agree(wanted):
                continue
            return self._hit(entry, sim, exact=False)
        return None

    # -- keeping answers -------------------------------------------------------------------------
    def put(self, key: CacheKey, text: str, embedding: np.ndarray, answer: bytes, *, model: str,
            cost: float) -> int:
        """Keep an answer (replacing the same exact request's); returns its entry id."""
        now = self.clock()
        self._expire(key.category, now)
        vec = np.asarray(embedding, dtype=np.float32).ravel()
        entry = _Entry(self._next_id, key, text, Literals.of(text), bytes(answer), model,
                       float(cost), now + self.limits(key.category).ttl_s)
        self._next_id += 1
        replaced = self._insert(entry, vec)
        if replaced is not None:
            self._evict([replaced])
        if self.sink is not None:
            self.sink.put_cached_answer(CachedAnswer(
                entry.id, key.partition, key.category, key.exact, text, vec.tobytes(),
                entry.answer, model, entry.cost, now, entry.expires_ts))
        self._enforce_quota(key.category)
        return entry.id

    def load(self, stored: Iterable[CachedAnswer]) -> int:
        """Rebuild from persisted entries (oldest first); those whose category is no longer
        configured, or that are expired, are dropped. Returns how many were loaded."""
        now, dropped, n = self.clock(), [], 0
        for s in stored:
            self._next_id = max(self._next_id, s.id + 1)
            if s.category not in self.config.categories or s.expires_ts <= now:
                dropped.append(s.id)
                continue
            key = CacheKey(s.partition, s.category, s.exact)
            replaced = self._insert(_Entry(s.id, key, s.text, Literals.of(s.text), s.answer,
                                           s.model, s.cost, s.expires_ts),
                                    np.frombuffer(s.embedding, dtype=np.float32))
            if replaced is not None:
                dropped.append(replaced)
                n -= 1
            n += 1
        for category in list(self._lru):
            dropped += self._enforce_quota(category, persist=False)
        if dropped and self.sink is not None:
            self.sink.delete_cached_answers(dropped)
        return n

    def clear(self) -> None:
        """Forget every entry (the embeddings' space changed: a new router's featurizer)."""
        self._evict(list(self._entries))

    # -- internals -------------------------------------------------------------------------------
    def _insert(self, entry: _Entry, vec: np.ndarray) -> int | None:
        """Index ``entry``; the id of the entry of the same exact request it replaces."""
        key = entry.key
        part = self._partitions.get((key.category, key.partition))
        if part is None:
            part = self._partitions[(key.category, key.partition)] = \
                _Partition(self._new_index(vec.size))
        old = part.exact.get(key.exact)
        if old is not None:
            self._remove(old)
            part = self._partitions.setdefault((key.category, key.partition),
                                               _Partition(self._new_index(vec.size)))
        part.exact[key.exact] = entry.id
        part.index.add(entry.id, vec)
        self._entries[entry.id] = entry
        self._lru.setdefault(key.category, OrderedDict())[entry.id] = None
        heapq.heappush(self._expiry.setdefault(key.category, []), (entry.expires_ts, entry.id))
        return old

    def _fresh(self, entry_id: int | None) -> _Entry | None:
        entry = self._entries.get(entry_id) if entry_id is not None else None
        if entry is None:
            return None
        if entry.expires_ts <= self.clock():
            self._evict([entry.id])
            return None
        return entry

    def _hit(self, entry: _Entry, similarity: float, *, exact: bool) -> Hit:
        self._lru[entry.key.category].move_to_end(entry.id)
        return Hit(entry.id, entry.answer, entry.model, entry.cost, similarity, exact)

    def _expire(self, category: str, now: float) -> None:
        heap, gone = self._expiry.get(category, []), []
        while heap and heap[0][0] <= now:
            _, entry_id = heapq.heappop(heap)
            entry = self._entries.get(entry_id)
            if entry is not None and entry.expires_ts <= now:
                gone.append(entry_id)
        self._evict(gone)

    def _enforce_quota(self, category: str, *, persist: bool = True) -> list[int]:
        lru = self._lru.get(category)
        over = len(lru) - self.limits(category).max_entries if lru else 0
        gone = list(itertools.islice(lru, over)) if lru and over > 0 else []
        self._evict(gone, persist=persist)
        return gone

    def _evict(self, ids: list[int], *, persist: bool = True) -> None:
        for entry_id in ids:
            self._remove(entry_id)
        if ids and persist and self.sink is not None:
            self.sink.delete_cached_answers(ids)

    def _remove(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return
        key = entry.key
        part = self._partitions[(key.category, key.partition)]
        part.index.remove(entry_id)
        if part.exact.get(key.exact) == entry_id:
            del part.exact[key.exact]
        if not len(part.index):
            del self._partitions[(key.category, key.partition)]
        self._lru[key.category].pop(entry_id, None)

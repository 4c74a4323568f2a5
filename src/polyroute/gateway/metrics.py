"""Prometheus metrics, each app with its own ``CollectorRegistry``.

Why a registry per app: the default global registry would make two gateways in one process (tests,
benchmarks) share and double-register counters; a registry owned by the app is created and dropped
with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from polyroute.gateway.breaker import OPEN, CircuitBreaker
from polyroute.policies import BiasBalancer

if TYPE_CHECKING:
    from polyroute.store import Store

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 120.0)
_DECISION_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    """The gateway's counters and histograms (names follow Prometheus conventions)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("polyroute_requests", "Chat completion requests by route "
                                "(profile or backend named by the client) and HTTP status",
                                ["route", "status"], registry=r)
        self.guard_actions = Counter("polyroute_guard_actions",
                                     "Requests the input guards did not simply allow, by action",
                                     ["action"], registry=self.registry)
        self.errors = Counter("polyroute_errors", "Requests that ended in an error, by kind",
                              ["kind"], registry=r)
        self.shadow_decisions = Counter("polyroute_shadow_decisions", "Shadow-mode requests by "
                                        "the model served and the model the router chose",
                                        ["served", "routed"], registry=r)
        self.shadow_comparisons = Counter("polyroute_shadow_comparisons", "Sampled shadow "
                                          "comparisons by verdict (routed, served, tie, same, "
                                          "none = not judged)", ["verdict"], registry=r)
        self.backend_requests = Counter("polyroute_backend_requests", "Tries of each backend by "
                                        "outcome (ok, passthrough, timeout, http_500, cooldown…)",
                                        ["backend", "outcome"], registry=r)
        self.fallbacks = Counter("polyroute_fallbacks", "Times a candidate failed or was skipped "
                                 "and the next candidate was tried", ["backend"], registry=r)
        self.backend_latency = Histogram("polyroute_backend_latency_seconds", "Backend time to "
                                         "a full answer (non-streamed) or first chunk (streamed)",
                                         ["backend"], buckets=_LATENCY_BUCKETS, registry=r)
        self.request_latency = Histogram("polyroute_request_latency_seconds", "Whole request "
                                         "time in the gateway, to the last byte", ["stream"],
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.decision_latency = Histogram("polyroute_decision_seconds", "Routing decision time "
                                          "(embedding + router + policy, queueing included)",
                                          buckets=_DECISION_BUCKETS, registry=r)
        self.decisions = Counter("polyroute_routing_decisions", "First-choice model of each "
                                 "routing decision", ["route", "model"], registry=r)
        self.spend = Counter("polyroute_spend_dollars", "Dollars charged per backend",
                             ["backend"], registry=r)
        self.tokens = Counter("polyroute_tokens", "Tokens per backend", ["backend", "kind"],
                              registry=r)
        self.feedback = Counter("polyroute_feedback", "Feedback scores received", registry=r)
        self.cooldown = Gauge("polyroute_backend_cooldown", "1 while a backend's circuit breaker "
                              "is open", ["backend"], registry=r)
        self.in_flight = Gauge("polyroute_in_flight_requests", "Requests being handled",
                               registry=r)
        self.cache_hits = Counter("polyroute_cache_hits", "Requests answered from the cache, "
                                  "by category and match (exact, semantic)",
                                  ["category", "match"], registry=r)
        self.cache_misses = Counter("polyroute_cache_misses", "Cache lookups that found no "
                                    "answer, by category", ["category"], registry=r)
        self.conversation_turns = Counter(
            "polyroute_conversation_turns", "Turns of pinned conversations by what the pin did: "
            "kept (served on the pinned model), moved (a new user turn's gain beat the cache "
            "loss), routed (no live pin, or its model unavailable)", ["outcome"], registry=r)
        self.cache_saved = Counter("polyroute_cache_saved_dollars", "Dollars the cached answers "
                                   "saved (what their original requests cost), by category",
                                   ["category"], registry=r)
        # The two gauges below (like ``cooldown``) are read from their owners in ``render``, not
        # set where they change: a backend's load moves on every slot taken or given back and a
        # bias on every balanced decision, so a scrape-time read is always current, costs
        # nothing per request and keeps the request path (backends, profiles, chat) free of
        # metrics calls. Both label sets are fixed when the app is built (backends; balanced
        # profiles and their models), so no series goes stale.
        self.backend_load = Gauge("polyroute_backend_load", "Requests holding or waiting for "
                                  "one of a backend's slots (the load a balancer sees)",
                                  ["backend"], registry=r)
        # The store's write queue, read at scrape time like the gauges above. While PostgreSQL
        # is unreachable ``reachable`` is 0 and ``queued_writes`` grows; at ``queue_limit``
        # new requests are refused (``store_refused_requests``) until it drains.
        self.store_queued = Gauge("polyroute_store_queued_writes", "Store writes queued in "
                                  "memory and not committed yet", registry=r)
        self.store_limit = Gauge("polyroute_store_queue_limit", "Queued store writes at which "
                                 "new requests are refused with 503 (0: no limit)", registry=r)
        self.store_reachable = Gauge("polyroute_store_reachable", "1 while the store's writer "
                                     "reaches its database, 0 while writes only queue",
                                     registry=r)
        self.store_refusals = Counter("polyroute_store_refused_requests", "Requests refused "
                                      "with 503 because the store's write queue was full",
                                      registry=r)
        self.balance_bias = Gauge("polyroute_balance_bias", "Online load balancing: the bias "
                                  "a balanced profile adds to a model's trade-off score (0 = "
                                  "none; negative = traffic pushed away)", ["profile", "model"],
                                  registry=r)

    def backend_outcome(self, backend: str, outcome: str, seconds: float | None = None, *,
                        fallback: bool = False) -> None:
        self.backend_requests.labels(backend, outcome).inc()
        if seconds is not None:
            self.backend_latency.labels(backend).observe(seconds)
        if fallback:
            self.fallbacks.labels(backend).inc()

    def unauthenticated(self) -> None:
        """A request refused for its key: counted here only (no store row is written)."""
        self.requests.labels("invalid", "401").inc()
        self.errors.labels("auth").inc()

    def finished(self, route: str, status: int, seconds: float, stream: bool) -> None:
        self.requests.labels(route, str(status)).inc()
        self.request_latency.labels("true" if stream else "false").observe(seconds)

    def charged(self, backend: str, cost: float, prompt_tokens: int | None,
                completion_tokens: int | None) -> None:
        if cost > 0:
            self.spend.labels(backend).inc(cost)
        if prompt_tokens:
            self.tokens.labels(backend, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(backend, "completion").inc(completion_tokens)

    def render(self, breakers: Iterable[tuple[str, CircuitBreaker]] = (), *,
               loads: Iterable[tuple[str, float]] = (),
               balancers: Iterable[tuple[str, BiasBalancer]] = (),
               store: Store | None = None) -> bytes:
        """The exposition text, after reading the gauges' current values: each backend's breaker
        and load, each balanced profile's biases (``(profile, balancer)`` pairs) and the
        store's write queue."""
        if store is not None:
            self.store_queued.set(store.pending_writes)
            self.store_limit.set(store.write_limit or 0)
            self.store_reachable.set(1.0 if store.reachable else 0.0)
        for name, breaker in breakers:
            self.cooldown.labels(name).set(1.0 if breaker.state == OPEN else 0.0)
        for name, load in loads:
            self.backend_load.labels(name).set(load)
        for profile, balancer in balancers:
            for model, bias in zip(balancer.models, balancer.bias_.tolist(), strict=True):
                self.balance_bias.labels(profile, model).set(bias)
        return generate_latest(self.registry)

"""The gateway's parts, built from a config and owned by one app (no module-level state).

Construction does the slow, fallible work — read keys from the environment, load (or train) the
router, check it against the backends, warm the encoder — so that a bad setup fails before a port
is opened. ``startup``/``shutdown`` open and release what lives in the event loop: backend
connection pools, the decision thread and the store.

Shutdown has two steps. :meth:`Gateway.drain` (on SIGTERM, see ``server.py``) only refuses new
chat requests (503) and turns ``/healthz`` to ``draining`` while the listener stays open, so a
load balancer sees it and in-flight requests finish; :meth:`Gateway.cut` then ends the streams
still running at the deadline with an error event. :meth:`Gateway.shutdown` waits for every
request to be recorded before the store is closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import anyio

from polyroute.cache import SemanticCache
from polyroute.config import GatewayConfig, ProfileConfig, backend_api_keys
from polyroute.conversations import StorePins
from polyroute.errors import ConfigError, PolyrouteError
from polyroute.gateway.auth import KeyRing
from polyroute.gateway.backends import Backend
from polyroute.gateway.ceilings import OutputCeilings
from polyroute.gateway.errors import APIError
from polyroute.gateway.lease import keep_lease
from polyroute.gateway.metrics import Metrics
from polyroute.gateway.profiles import ProfilePlan, plan_for
from polyroute.gateway.routing import ONBOARD_HINT, Decider, check_backends, load_pipeline
from polyroute.gateway.shadow import ShadowComparer
from polyroute.gateway.shared import open_shared
from polyroute.gateway.stages import guards_enabled, pipeline_for
from polyroute.gateway.stages.conversation import Pinning
from polyroute.gateway.tracing import RequestTracer
from polyroute.gateway.upstream_http import default_ssl_context
from polyroute.guards.stage import RequestGuards
from polyroute.pipeline import Pipeline
from polyroute.policies import Policy
from polyroute.signals import SignalSet, compile_rules
from polyroute.signals.routes import NamedRoutes
from polyroute.store import KeyRecord, Store, open_store

logger = logging.getLogger(__name__)


#: SHA-256 of "pr-demo-key-change-me", the client key examples/gateway.yaml ships with: public,
#: so a gateway that still accepts it is open to anyone who read the example.
DEMO_KEY_SHA256 = "09fd03db36fbec661391360cf374bcdac9181c8da3db0a7c3d1c60377e9633ae"


def demo_key_warnings(config: GatewayConfig) -> list[str]:
    """A warning per configured client key that is the example config's public demo key."""
    return [f"keys[{i}] ({k.id}) is the example config's demo key, which anyone can read: "
            f"replace it (`polyroute config new-key`)"
            for i, k in enumerate(config.keys) if k.sha256.lower() == DEMO_KEY_SHA256]


@dataclass(frozen=True)
class Route:
    """What the client's ``model`` field names: a route profile, or one backend directly."""

    name: str
    profile: ProfileConfig | None = None
    policy: Policy | None = None
    backend: str | None = None
    #: How a profile's requests are served (plain, cascade, top-k; balancing state).
    plan: ProfilePlan | None = None

    @property
    def allowed(self) -> tuple[str, ...] | None:
        return None if self.profile is None else self.profile.models

    def routable(self, servable: tuple[str, ...]) -> bool:
        """A backend route always is; a profile when one of its models can be routed."""
        allowed = self.allowed
        return self.profile is None or any(allowed is None or m in allowed for m in servable)


class Gateway:
    """Everything one running gateway needs; held by its app as ``app.state.gateway``."""

    def __init__(self, config: GatewayConfig, *, pipeline: Pipeline | None = None,
                 env: Mapping[str, str] | None = None, warm_up: bool = True) -> None:
        self.config = config
        api_keys = backend_api_keys(config, env)
        self.backends = {b.name: Backend(b, api_keys[b.name], config.breaker)
                         for b in config.backends}
        self.pipeline = pipeline if pipeline is not None else load_pipeline(config.router)
        self.decider, self.routes, self.warnings = self._routing(self.pipeline, warm_up)
        self.warnings += demo_key_warnings(config)
        for warning in self.warnings:
            logger.warning("%s", warning)
        #: Decision rules in config order, and the signals and named routes they use.
        self.rules = compile_rules(config.rules, config.signals)
        self.signals, self.named_routes = self._semantics(self.decider)
        self._reload_lock = asyncio.Lock()
        #: The last published router identity this replica tried to follow.
        self._followed: str | None = None
        #: The request pipeline every chat request runs through, in order (see ``stages``).
        self.stages = pipeline_for(config)
        #: The answer cache (None unless ``cache.enabled``); its entries are loaded at start.
        self.cache = SemanticCache(config.cache) if config.cache.enabled else None
        #: The input/output guards (None unless ``guards`` enables one); the jailbreak
        #: classifier reads the router's own embeddings, so a mismatch fails here.
        self.guards = RequestGuards.from_config(config.guards) if guards_enabled(config) \
            else None
        #: The classifier's own encoder, when the router's embeddings are in another space:
        #: each guarded request is then embedded twice (see ``RequestGuards.own_featurizer``).
        self.guard_featurizer = None if self.guards is None else \
            self.guards.own_featurizer(self.pipeline.featurizer.id)
        if self.guard_featurizer is not None:
            logger.warning("guards.jailbreak: the classifier reads %s embeddings and the router "
                           "%s, so each request is embedded a second time for it; a router "
                           "trained with --featurizer minilm shares one embedding",
                           self.guard_featurizer.id, self.pipeline.featurizer.id)
        #: Session pinning (None unless ``conversations.enabled``); its pin store is the
        #: gateway's store unless one is set before ``startup`` (a shared one, for replicas).
        self.conversations = Pinning(config.conversations, config.backends) \
            if config.conversations.enabled else None
        self.keys = KeyRing(config.keys, required=config.server.require_auth)
        #: Spend ledger, rate limits and breaker verdicts: per process, or shared in Redis
        #: with the other replicas (``shared:``; Redis must answer now, before a port opens).
        self.shared = open_shared(config)
        self.spend = self.shared.spend
        self.rates = self.shared.rates
        self.shared.breakers.attach((n, b.breaker) for n, b in self.backends.items())
        self.ceilings = OutputCeilings.from_config(config)
        self.metrics = Metrics()
        #: Spans of each finished request (None unless ``telemetry`` names an exporter).
        self.tracer = RequestTracer.from_config(config)
        #: Shadow mode's background comparisons of sampled requests.
        self.shadow = ShadowComparer(self)
        self._store: Store | None = None
        #: The replica's heartbeat on a store several replicas share (``lease.py``).
        self._lease: asyncio.Task | None = None
        self.draining = False
        #: Requests being handled, streams included until their record is written.
        self.active = 0
        #: Set when the shutdown deadline cuts the streams still running (made in ``startup``:
        #: an event belongs to the running loop).
        self.cutting: anyio.Event | None = None

    def _routing(self, pipeline: Pipeline, warm_up: bool
                 ) -> tuple[Decider, dict[str, Route], list[str]]:
        """What a router decides with: its decider (warmed up), the routes built on its servable
        models, and the warnings about backends it does not know. Blocking (loads the encoder)."""
        config = self.config
        warnings = check_backends(pipeline.models, config)
        decider = Decider(pipeline, config.backends, config.router.max_batch,
                          config.router.threads, config.router.workers or 1,
                          config.router.decide_on)
        if warm_up:
            decider.warm_up()
        routes: dict[str, Route] = {}
        for name, p in config.effective_profiles().items():
            plan = plan_for(p, decider.models, {b.name: b for b in config.backends})
            routes[name] = Route(name, profile=p, policy=plan.policy, plan=plan)
        for name in self.backends:
            routes[name] = Route(name, backend=name)
        return decider, routes, warnings

    def _semantics(self, decider: Decider) -> tuple[SignalSet, NamedRoutes | None]:
        """The signals and named routes, their examples embedded in ``decider``'s space (once:
        each request is compared with them through the embedding its decision makes anyway).
        Blocking when domains or routes are configured."""
        config = self.config
        signals = SignalSet(config.signals, decider.embed if config.signals.domains else None)
        routes = NamedRoutes(config.routes, decider.embed) if config.routes else None
        return signals, routes

    async def reload_router(self, *, announce: bool = True) -> dict[str, str]:
        """Load ``router.path`` again and switch to it; returns both routers' identities.

        Why this shape: loading and warming the new router happen off the event loop while the
        old one keeps deciding; the switch itself is three assignments on the loop, so a request
        sees one router or the other, never a mix. Decisions already queued on the old decider
        finish there before its thread stops. Raises :class:`ConfigError` (the old router stays)
        if the new one cannot be loaded or serves none of the backends as configured.
        With ``announce`` the switch is published to the other replicas (``shared:``), which
        follow it (``gateway/shared/redis_router.py``).
        """
        if self.config.router.path is None:
            raise ConfigError("router.path is not set (the router is trained at start-up): "
                              "there is nothing to reload")
        async with self._reload_lock:
            old = self.pipeline.identity
            pipeline = await asyncio.to_thread(load_pipeline, self.config.router)
            decider, routes, warnings = await asyncio.to_thread(self._routing, pipeline, True)
            signals, named = await asyncio.to_thread(self._semantics, decider)
            decider.start()
            previous = self.decider
            if self.cache is not None and \
                    pipeline.featurizer.id != self.pipeline.featurizer.id:
                self.cache.clear()  # its embeddings are in the old router's space
            self.pipeline, self.decider, self.routes, self.warnings = \
                pipeline, decider, routes, warnings
            self.signals, self.named_routes = signals, named
            await asyncio.to_thread(previous.stop)
        logger.warning("router switched: %s -> %s", old, pipeline.identity)
        for warning in warnings:
            logger.warning("%s", warning)
        if announce and pipeline.identity != old:
            self.shared.router.published(pipeline.identity)
        return {"previous": old, "current": pipeline.identity}

    async def _learn_shared(self, text: str, model: str, score: float) -> bool:
        """Another replica's feedback, fed to this replica's router (the live one)."""
        return await self.decider.learn(text, model, score)

    async def _follow_router(self, identity: str) -> None:
        """Another replica switched to ``identity``: load ``router.path`` unless this one
        serves it already, or already tried (a path holding something else is said once)."""
        if identity in (self.pipeline.identity, self._followed):
            return
        self._followed = identity
        try:
            switch = await self.reload_router(announce=False)
        except PolyrouteError as exc:
            logger.error("router: could not follow the published router %s: %s", identity, exc)
            return
        if switch["current"] != identity:
            logger.error("router: the published router is %s but this replica's router.path "
                         "holds %s; put the published router there (the one this replica "
                         "loaded keeps serving)", identity, switch["current"])

    async def _reload_on_signal(self) -> None:
        try:
            await self.reload_router()
        except PolyrouteError as exc:
            logger.error("router reload failed, the previous router stays: %s", exc)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the gateway is not started (run the app's lifespan)")
        return self._store

    @property
    def profile_names(self) -> list[str]:
        return [n for n, r in self.routes.items() if r.profile is not None]

    def resolve(self, model: str) -> Route:
        """The route for the client's ``model`` field; 400 if it names nothing known."""
        route = self.routes.get(model)
        if route is None:
            raise APIError(400, f"unknown model {model!r}: ask for a route profile "
                                f"({', '.join(self.profile_names)}) or a backend "
                                f"({', '.join(self.backends)})", code="model_not_found",
                           param="model")
        if not route.routable(self.decider.models):
            raise APIError(503, f"profile {model!r} has no backend the router can route yet "
                                f"(no outcome data); name a backend as the model, or "
                                f"{ONBOARD_HINT}", code="no_routable_backend")
        return route

    # -- requests in flight ----------------------------------------------------------------------
    def enter(self) -> None:
        """A request began (paired with exactly one :meth:`leave`, after its record)."""
        self.active += 1
        self.metrics.in_flight.inc()

    def leave(self) -> None:
        self.active -= 1
        self.metrics.in_flight.dec()

    # -- lifecycle -------------------------------------------------------------------------------
    def drain(self) -> None:
        """Stop taking chat requests (503) and report ``draining``; in-flight ones go on."""
        if not self.draining:
            self.draining = True
            logger.warning("polyroute gateway draining: %d request(s) in flight", self.active)

    def cut(self) -> None:
        """The drain's deadline: end the streams still running, each with an error event."""
        self.draining = True
        if self.cutting is not None and not self.cutting.is_set():
            if self.active:
                logger.warning("shutdown deadline: cutting %d request(s) still in flight",
                               self.active)
            self.cutting.set()

    async def startup(self, store: Store | None = None) -> None:
        self.cutting = anyio.Event()
        self._store = store if store is not None else \
            open_store(self.config.store, recover=True)
        self._store.sync_keys([KeyRecord(k.id, k.sha256, k.spend_limit, k.spend_period)
                               for k in self.config.keys])
        if getattr(self._store, "shared_by_replicas", False):
            self._lease = asyncio.get_running_loop().create_task(keep_lease(self._store))
        await self.shared.start(self._store)
        logger.info("%s", self.shared.describe())
        if self.config.router.path is not None:  # a router trained at start has no files
            await self.shared.router.start(self.pipeline.identity, self._follow_router)
        await self.shared.feedback.start(self._learn_shared)
        if self.cache is not None:
            self.cache.sink = self._store
            self.cache.load(self._store.cached_answers(self.cache.clock()))
        self.ceilings.load(self._store, self.backends)
        if self.conversations is not None:
            if self.conversations.pins is None:  # replicas share pins in Redis when they can
                self.conversations.pins = self.shared.pins() or StorePins(self._store)
            await self.conversations.pins.expire(time.time())
        ssl_context = default_ssl_context()  # one for all pooled clients
        for backend in self.backends.values():
            backend.open(ssl_context, self.config.server.upstream_client)
        self.decider.start()
        if self.guard_featurizer is not None:  # load its model now, not on the first request
            featurizer = self.guard_featurizer
            await asyncio.to_thread(featurizer.encode, ["warm-up"])
        if threading.current_thread() is threading.main_thread():  # signals reach only it
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(self._reload_on_signal()))
        logger.info("polyroute gateway ready (router %s): profiles %s; backends %s",
                    self.pipeline.identity,
                    ", ".join(self.profile_names), ", ".join(self.backends))

    async def shutdown(self, record_timeout: float = 5.0) -> None:
        """Runs after the server has let in-flight requests finish: release and flush.

        uvicorn cancels the requests left at its deadline and starts this at once, before they
        have run their ``finally`` blocks; so first wait (up to ``record_timeout`` s) until every
        request has written its record — else a stream whose last byte had gone out, but whose
        record was not yet queued, would find the store closed and be marked interrupted.
        """
        self.cut()
        deadline = time.monotonic() + record_timeout
        while self.active and time.monotonic() < deadline:
            await anyio.sleep(0.01)
        if self.active:
            logger.warning("%d request(s) still unrecorded at shutdown", self.active)
        await self.shadow.drain(max(0.0, deadline - time.monotonic()))
        for backend in self.backends.values():
            await backend.aclose()
        self.decider.stop()
        await self.shared.close()
        if self._lease is not None:
            self._lease.cancel()
        if self._store is not None:
            self._store.close()
        if self.tracer is not None:
            self.tracer.shutdown()  # exports the spans still buffered
        logger.info("polyroute gateway stopped; store flushed")

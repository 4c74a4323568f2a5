"""The gateway's parts, built from a config and owned by one app (no module-level state).

Construction does the slow, fallible work — read keys from the environment, load (or train) the
router, check it against the backends, warm the encoder — so that a bad setup fails before a port
is opened. ``startup``/``shutdown`` open and release what lives in the event loop: backend
connection pools, the decision thread and the store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from polyroute.config import GatewayConfig, ProfileConfig, backend_api_keys
from polyroute.gateway.auth import KeyRing
from polyroute.gateway.backends import Backend
from polyroute.gateway.errors import APIError
from polyroute.gateway.metrics import Metrics
from polyroute.gateway.profiles import ProfilePlan, plan_for
from polyroute.gateway.routing import Decider, check_backends, load_pipeline
from polyroute.gateway.spend import SpendTracker
from polyroute.pipeline import Pipeline
from polyroute.policies import Policy
from polyroute.store import KeyRecord, SQLiteStore, Store

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


class Gateway:
    """Everything one running gateway needs; held by its app as ``app.state.gateway``."""

    def __init__(self, config: GatewayConfig, *, pipeline: Pipeline | None = None,
                 env: Mapping[str, str] | None = None, warm_up: bool = True) -> None:
        self.config = config
        api_keys = backend_api_keys(config, env)
        self.pipeline = pipeline if pipeline is not None else load_pipeline(config.router)
        self.warnings = check_backends(self.pipeline.models, config) + demo_key_warnings(config)
        for warning in self.warnings:
            logger.warning("%s", warning)
        self.decider = Decider(self.pipeline, config.backends, config.router.max_batch,
                               config.router.threads)
        if warm_up:
            self.decider.warm_up()
        self.backends = {b.name: Backend(b, api_keys[b.name], config.breaker)
                         for b in config.backends}
        self.routes: dict[str, Route] = {}
        for name, p in config.effective_profiles().items():
            plan = plan_for(p, self.decider.models, {b.name: b for b in config.backends})
            self.routes[name] = Route(name, profile=p, policy=plan.policy, plan=plan)
        for name in self.backends:
            self.routes[name] = Route(name, backend=name)
        self.keys = KeyRing(config.keys, required=config.server.require_auth)
        self.spend = SpendTracker(config.keys)
        self.metrics = Metrics()
        self._store: Store | None = None
        self.draining = False

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
        return route

    # -- lifecycle -------------------------------------------------------------------------------
    async def startup(self, store: Store | None = None) -> None:
        self._store = store if store is not None else \
            SQLiteStore(self.config.store.path, recover=True)
        self._store.sync_keys([KeyRecord(k.id, k.sha256, k.spend_limit, k.spend_period)
                               for k in self.config.keys])
        self.spend.load(self._store)
        ssl_context = httpx.create_ssl_context()  # one for all pooled clients
        for backend in self.backends.values():
            backend.open(ssl_context)
        self.decider.start()
        logger.info("polyroute gateway ready: profiles %s; backends %s",
                    ", ".join(self.profile_names), ", ".join(self.backends))

    async def shutdown(self) -> None:
        """Runs after the server has let in-flight requests finish: release and flush."""
        self.draining = True
        for backend in self.backends.values():
            await backend.aclose()
        self.decider.stop()
        if self._store is not None:
            self._store.close()
        logger.info("polyroute gateway stopped; store flushed")

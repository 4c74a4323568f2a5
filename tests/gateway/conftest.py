"""Gateway fixtures: a router trained on the made-up world (``gateway_world``), stand-in backends
started once per session, and gateways started per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_world import RunningGateway, base_config, deep_update, make_outcomes
from redis_world import redis_space  # noqa: F401 (a fixture for the shared-state tests)
from standin import ServerThread, StandIn

from polyroute import Pipeline
from polyroute.config import validate_config
from polyroute.gateway import create_app
from polyroute.gateway.server import uvicorn_config


@pytest.fixture(scope="session")
def router_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tfidf + kNN router trained on the made-up world."""
    path = tmp_path_factory.mktemp("router")
    Pipeline("knn", featurizer="tfidf", cache=False).fit(make_outcomes()).save(path)
    return path


@pytest.fixture(scope="session")
def minilm_pipeline() -> Pipeline:
    """A kNN router on MiniLM sentence embeddings, which the jailbreak classifier reads."""
    return Pipeline("knn", featurizer="minilm", cache=False).fit(make_outcomes())


@pytest.fixture(scope="session")
def _standin_servers() -> Iterator[dict[str, tuple[StandIn, ServerThread]]]:
    servers = {}
    for name in ("alpha", "beta", "gamma"):
        app = StandIn(name)
        servers[name] = (app, ServerThread(app).start())
    yield servers
    for _, server in servers.values():
        server.stop()


@pytest.fixture
def standins(_standin_servers) -> dict[str, StandIn]:
    """The three stand-in backends, reset to answering normally."""
    for app, _ in _standin_servers.values():
        app.mode, app.chunks, app.reply, app.chunk_gap = "ok", 5, None, 0.0
        app.gate.clear()
        app.script.clear()
        app.requests.clear()
        app.headers.clear()
    return {name: app for name, (app, _) in _standin_servers.items()}


@pytest.fixture
def standin_urls(_standin_servers) -> dict[str, str]:
    return {name: server.url for name, (_, server) in _standin_servers.items()}


@pytest.fixture
def gateway_factory(router_dir: Path, standin_urls: dict[str, str], tmp_path: Path
                    ) -> Iterator[Callable[..., RunningGateway]]:
    """Start a gateway with the base config changed by ``changes`` (nested dicts merge)."""
    running: list[ServerThread] = []

    def start(changes: dict[str, Any] | None = None, *, urls: dict[str, str] | None = None,
              backends: dict[str, dict[str, Any]] | None = None,
              pipeline: Pipeline | None = None, env: dict[str, str] | None = None
              ) -> RunningGateway:
        raw = deep_update(base_config(router_dir, tmp_path / "store.sqlite",
                                      urls or standin_urls), changes or {})
        raw["backends"] = [deep_update(b, (backends or {}).get(b["name"], {}))
                           for b in raw["backends"]]
        config = validate_config(raw)
        app = create_app(config, pipeline=pipeline, env=env or {})
        server = ServerThread(app, uvicorn_config(app, config, log_level="warning"))
        running.append(server.start())
        return RunningGateway(config, server, app)

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def gateway(gateway_factory, standins) -> RunningGateway:
    """A gateway in front of alpha, beta and gamma with the base config."""
    return gateway_factory()


#: The upstream dialects the client-API tests run against; each client API × dialect pair is one
#: case (the stand-ins speak Chat Completions; a stand-in speaking the Anthropic Messages API
#: joins here as "anthropic").
UPSTREAM_DIALECTS = ["openai"]


@pytest.fixture(params=UPSTREAM_DIALECTS)
def dialect_gateway(request, gateway_factory, standins) -> RunningGateway:
    """A gateway with the base config whose backends speak ``request.param``."""
    assert request.param == "openai"
    return gateway_factory()

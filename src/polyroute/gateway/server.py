"""Run the gateway with uvicorn, with graceful shutdown.

On SIGINT/SIGTERM uvicorn stops accepting connections and lets in-flight requests (streams
included) finish for up to ``server.shutdown_timeout`` seconds; then the app's lifespan closes
the backend pools and flushes the store.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import uvicorn

from polyroute.config import GatewayConfig
from polyroute.gateway.app import create_app
from polyroute.gateway.routing import default_threads
from polyroute.pipeline import Pipeline


def uvicorn_config(app, config: GatewayConfig, **overrides) -> uvicorn.Config:
    """The uvicorn settings the gateway runs with (shared by ``serve`` and the tests)."""
    server = config.server
    settings = dict(host=server.host, port=server.port, log_level=server.log_level,
                    access_log=server.access_log, lifespan="on",
                    timeout_graceful_shutdown=server.shutdown_timeout,
                    timeout_keep_alive=30, proxy_headers=False, server_header=False)
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


def serve(config: GatewayConfig, *, pipeline: Pipeline | None = None,
          env: Mapping[str, str] | None = None, sock: socket.socket | None = None) -> None:
    """Build the app (failing before binding if anything is wrong) and serve until stopped.

    The process is the gateway's own, so the encoder's CPU threads are capped here when the
    config leaves ``router.threads`` unset (``create_app`` alone never changes process-wide
    thread settings).
    """
    if config.router.threads is None:
        router = config.router.model_copy(update={"threads": default_threads()})
        config = config.model_copy(update={"router": router})
    app = create_app(config, pipeline=pipeline, env=env)
    server = uvicorn.Server(uvicorn_config(app, config))
    server.run(sockets=[sock] if sock is not None else None)
    if not server.started:
        raise SystemExit(3)

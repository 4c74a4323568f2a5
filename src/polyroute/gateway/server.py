"""Run the gateway with uvicorn, with graceful shutdown.

On SIGINT/SIGTERM uvicorn stops accepting connections and lets in-flight requests (streams
included) finish for up to ``server.shutdown_timeout`` seconds; then the app's lifespan closes
the backend pools and flushes the store.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

import uvicorn

from polyroute.config import GatewayConfig, ServerConfig
from polyroute.errors import ConfigError
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


def bind(server: ServerConfig) -> socket.socket:
    """A listening socket on ``server.host:server.port``; ConfigError if the port is taken.

    Why first: loading the router and opening the live store take seconds and touch state; a
    second gateway started on a busy port must fail at once, before any of that, with one line
    (uvicorn alone would only find out after the app's startup had run).
    """
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((server.host, server.port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {server.port} is already in use on {server.host} (another "
                              f"gateway?): stop it or choose another port (server.port, "
                              f"--port)") from None
        raise ConfigError(f"cannot listen on {server.host}:{server.port} "
                          f"({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock


def serve(config: GatewayConfig, *, pipeline: Pipeline | None = None,
          env: Mapping[str, str] | None = None, sock: socket.socket | None = None) -> None:
    """Claim the port, build the app (failing before serving if anything is wrong) and serve
    until stopped.

    The port is bound before anything slow or stateful (see :func:`bind`); connections that
    arrive while the router loads wait in the listen backlog. The process is the gateway's own,
    so the encoder's CPU threads are capped here when the config leaves ``router.threads`` unset
    (``create_app`` alone never changes process-wide thread settings).
    """
    if sock is None:
        sock = bind(config.server)
    try:
        if config.router.threads is None:
            router = config.router.model_copy(update={"threads": default_threads()})
            config = config.model_copy(update={"router": router})
        app = create_app(config, pipeline=pipeline, env=env)
    except BaseException:
        sock.close()
        raise
    server = uvicorn.Server(uvicorn_config(app, config))
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)

"""Run the gateway with uvicorn, with a graceful shutdown a load balancer can see.

On the first SIGINT/SIGTERM the gateway *drains* (:class:`GatewayServer`): the listener stays
open, ``/healthz`` answers 503 ``draining`` and new chat requests get 503, while in-flight
requests (streams included) finish, for up to ``server.shutdown_timeout`` seconds. At that
deadline (or as soon as nothing is in flight) streams still running are ended with a
``gateway_shutdown`` error event and recorded; then uvicorn closes the listener, cancels what is
left after a short grace (recorded ``interrupted``), and the app's lifespan closes the backend
pools and flushes the store. A second signal skips the rest of the drain.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from polyroute.config import GatewayConfig, ServerConfig
from polyroute.errors import ConfigError
from polyroute.gateway.app import create_app
from polyroute.gateway.routing import default_threads, default_workers
from polyroute.gateway.service import Gateway
from polyroute.pipeline import Pipeline

_KEEP_ALIVE = 30.0
#: Seconds a thread may keep the GIL while another waits for it (Python's default is 5 ms).
#: Why shorter: the event loop gives the GIL up at every socket call and, while a decision
#: worker or the store writer is running Python code, waited up to 5 ms to get it back — every
#: request's next step queued behind the decision thread (measured: routed TF-IDF throughput
#: at concurrency 32 rose by about half with 0.5 ms; the encoders release the GIL while they
#: compute, so they lose nothing).
SWITCH_INTERVAL = 0.0005
#: Seconds uvicorn still waits, after the drain's deadline has cut the streams, for the cut
#: requests to end before it cancels what is left.
_CUT_GRACE = 2.0


class GatewayServer(uvicorn.Server):
    """uvicorn's server with a drain before the shutdown (see the module docstring).

    Why not uvicorn's own graceful shutdown: it closes the listening socket first, so during the
    drain ``/healthz`` refuses connections and a load balancer never sees ``draining``; and at
    its deadline it cancels streams without a word to the client.
    """

    def __init__(self, config: uvicorn.Config, gateway: Gateway, drain_timeout: float) -> None:
        super().__init__(config)
        self.gateway = gateway
        self.drain_timeout = drain_timeout
        self._drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_deadline is None and not self.should_exit:
            self._captured_signals.append(sig)  # re-raised by uvicorn once shut down
            self._drain_deadline = time.monotonic() + self.drain_timeout
            self.gateway.drain()
            return
        super().handle_exit(sig, frame)  # a second signal: shut down now

    async def on_tick(self, counter: int) -> bool:
        if self._drain_deadline is not None and self.gateway.cutting is not None \
                and not self.gateway.cutting.is_set() and (
                    not self.gateway.active or self.should_exit
                    or time.monotonic() >= self._drain_deadline):
            self.gateway.cut()
            self.config.timeout_graceful_shutdown = _CUT_GRACE
            self.should_exit = True
        return await super().on_tick(counter)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for a request's headers.

    Why httptools (and uvloop, see :func:`uvicorn_config`): a C parser and a C event loop for
    what h11 and asyncio do in Python, which is most of what a pinned request costs (uvloop
    alone raised pinned throughput by about a third in issue 14's measurement). Why the
    deadline: uvicorn has no header-read timeout —
    its keep-alive timer is cancelled by the first byte received and never armed on a fresh
    connection — so a client sending its headers a byte at a time (or nothing at all) holds a
    connection forever. Here a connection must have complete headers within
    ``header_timeout`` of connecting, or of its previous response plus the keep-alive time;
    otherwise it is closed. The body has its own limit (``server.body_timeout``, in
    :func:`~polyroute.gateway.body.read_body`).
    """

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._waiting_for_headers():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._waiting_for_headers():  # not when a pipelined request already started
            self._arm(self.timeout_keep_alive + self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_config(app, config: GatewayConfig, **overrides) -> uvicorn.Config:
    """The uvicorn settings the gateway runs with (shared by ``serve`` and the tests)."""
    server = config.server
    settings = dict(host=server.host, port=server.port, log_level=server.log_level,
                    access_log=server.access_log, lifespan="on",
                    timeout_graceful_shutdown=server.shutdown_timeout,
                    timeout_keep_alive=_KEEP_ALIVE, proxy_headers=False, server_header=False,
                    loop="uvloop", http=functools.partial(HeaderDeadlineProtocol,
                                           header_timeout=server.header_timeout))
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

    The process's GIL switch interval is shortened (:data:`SWITCH_INTERVAL`). The port is
    bound before anything slow or stateful (see :func:`bind`); connections that
    arrive while the router loads wait in the listen backlog. The process is the gateway's own,
    so the decision workers and the encoder's CPU threads are set here when the config leaves
    ``router.workers`` / ``router.threads`` unset (``create_app`` alone never changes
    process-wide thread settings).
    """
    from polyroute.store import open_store

    sys.setswitchinterval(SWITCH_INTERVAL)
    if sock is None:
        sock = bind(config.server)
    store = None
    try:
        router = config.router
        workers = router.workers or default_workers()
        if router.workers is None or router.threads is None:
            router = router.model_copy(update={
                "workers": workers, "threads": router.threads or default_threads(workers)})
            config = config.model_copy(update={"router": router})
        # Opened here, not in the app's startup: an unreachable database is then one line
        # from the CLI (a StoreError) rather than a traceback from uvicorn's lifespan.
        store = open_store(config.store, recover=True)
        app = create_app(config, pipeline=pipeline, env=env, store=store)
    except BaseException:
        if store is not None:
            store.close()
        sock.close()
        raise
    server = GatewayServer(uvicorn_config(app, config), app.state.gateway,
                           config.server.shutdown_timeout)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)

"""Clients that misbehave: too slow to send their request, or gone before it is answered.

Raw sockets play the slow clients (httpx cannot send headers byte by byte). The checks are on
behaviour — the gateway closes the connection, the request is recorded as the client's doing —
with generous waits, never on how fast the gateway reacts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time

from gateway_world import KEY, MATH_PROMPT, wait_for

_BODY = json.dumps({"model": "polyroute-auto",
                    "messages": [{"role": "user", "content": MATH_PROMPT}]}).encode()


def _connect(gw) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(length: int = len(_BODY)) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"authorization: Bearer {KEY}\r\ncontent-type: application/json\r\n"
            f"content-length: {length}\r\n\r\n").encode()


def _trickle(sock: socket.socket, data: bytes, *, pause: float, give_up: float) -> bytes | None:
    """Send ``data`` a byte at a time; what the server sent back once it closed the
    connection, or None if it was still open after ``give_up`` seconds."""
    deadline = time.monotonic() + give_up
    sock.settimeout(pause)
    received = b""
    for i in range(len(data)):
        if time.monotonic() > deadline:
            return None
        try:
            sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return received
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received  # closed by the gateway
        received += chunk
    return None


def test_a_client_sending_headers_byte_by_byte_is_disconnected(gateway_factory, standins):
    gw = gateway_factory({"server": {"header_timeout": 0.5}})
    with _connect(gw) as sock:
        closed = _trickle(sock, _head() + _BODY, pause=0.1, give_up=20)
    assert closed is not None, "the gateway kept a connection whose headers never ended"
    assert all(s.calls == 0 for s in standins.values())


def test_an_idle_connection_that_never_sends_a_request_is_disconnected(gateway_factory):
    gw = gateway_factory({"server": {"header_timeout": 0.5}})
    with _connect(gw) as sock:
        sock.settimeout(20)
        assert sock.recv(1) == b""  # closed, not left open forever


def test_a_slow_body_is_refused_with_408_and_recorded(gateway_factory, standins, caplog):
    gw = gateway_factory({"server": {"body_timeout": 0.5}})
    with _connect(gw) as sock:
        sock.sendall(_head())
        answer = _trickle(sock, _BODY, pause=0.1, give_up=20)
    assert answer is not None, "the gateway kept waiting for a body sent byte by byte"
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert all(s.calls == 0 for s in standins.values())
    gw.flush()
    [rec] = gw.gateway.store.recent_requests()
    assert rec.status == "error" and rec.http_status == 408 and rec.key_id == "one"


def test_a_client_leaving_during_the_upload_is_client_closed(gateway, standins, caplog):
    caplog.set_level(logging.WARNING)
    with _connect(gateway) as sock:
        sock.sendall(_head() + _BODY[:10])
        wait_for(lambda: len(gateway.server.server.server_state.connections) == 1,
                 "the gateway to accept the connection")
    wait_for(lambda: gateway.gateway.store.flush(5) or gateway.gateway.store.recent_requests(),
             "the request to be recorded")
    [rec] = gateway.gateway.store.recent_requests()
    assert rec.status == "client_closed" and rec.http_status == 499, rec
    assert rec.key_id == "one"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    with gateway.client() as c:
        assert 'polyroute_errors_total{kind="client_closed"} 1.0' in c.get("/metrics").text


def _give_up(gw, model: str, standin) -> None:
    """Send a non-streamed request and leave once the backend has it."""
    import threading

    import httpx

    def send() -> None:
        with gw.client() as c, contextlib.suppress(httpx.TransportError):
            c.post("/v1/chat/completions", timeout=httpx.Timeout(30, read=1.0),
                   json={"model": model, "messages": [{"role": "user", "content": MATH_PROMPT}]})

    thread = threading.Thread(target=send)
    thread.start()
    thread.join(60)


def _finished(gw):
    gw.flush()
    return [r for r in gw.gateway.store.recent_requests() if r.status != "in_progress"]


def test_a_client_giving_up_on_a_plain_request_is_client_closed(gateway, standins):
    standins["alpha"].mode = "hold"  # answers only when released
    _give_up(gateway, "alpha", standins["alpha"])
    wait_for(lambda: _finished(gateway), "the abandoned request to be recorded")
    [rec] = gateway.gateway.store.recent_requests()
    assert rec.status == "client_closed" and rec.http_status == 499, rec
    assert rec.cost == 0.0  # the backend never answered
    wait_for(lambda: gateway.gateway.backends["alpha"].load == 0, "alpha's slot to be freed")


def test_a_client_giving_up_mid_cascade_is_charged_for_the_steps_paid(gateway_factory,
                                                                        standins):
    gw = gateway_factory({"profiles": {"polyroute-cascade": {"policy": {
        "kind": "cascade", "threshold": 0.2, "lam": 0.1, "scorer": "heuristic"}}}})
    standins["gamma"].reply = "I'm sorry, but I can't help with that."  # weak: escalate
    standins["alpha"].mode = "hold"  # the cheap step (gamma) answers, the escalation hangs
    _give_up(gw, "polyroute-cascade", standins["alpha"])
    wait_for(lambda: _finished(gw), "the abandoned request to be recorded")
    [rec] = gw.gateway.store.recent_requests()
    assert rec.status == "client_closed", rec
    assert standins["gamma"].calls == 1 and standins["alpha"].calls == 1
    assert rec.cost > 0  # gamma's answer was paid for
    assert gw.gateway.store.spend_by_key()["one"] == rec.cost


def test_a_stream_cancelled_at_the_shutdown_deadline_is_recorded(gateway_factory, standins,
                                                                 tmp_path):
    """uvicorn cancels what is left at its deadline and runs the lifespan's shutdown at once;
    the store must not close before the cancelled stream has written its record."""
    import threading

    import httpx

    from polyroute.store import SQLiteStore

    gw = gateway_factory({"server": {"shutdown_timeout": 0.2}})
    standins["alpha"].mode = "stall_mid"
    got: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(httpx.TransportError), gw.client() as c, c.stream(
                "POST", "/v1/chat/completions", json={
                    "model": "alpha", "stream": True,
                    "messages": [{"role": "user", "content": MATH_PROMPT}]}) as r:
            for chunk in r.iter_bytes():
                got.append(chunk)

    thread = threading.Thread(target=read)
    thread.start()
    wait_for(lambda: b"answers 1|" in b"".join(got), "the stream to start")
    gw.server.stop()
    thread.join(30)
    store = SQLiteStore(tmp_path / "store.sqlite", readonly=True)
    try:
        [rec] = store.recent_requests()
        assert rec.status != "in_progress", rec
        assert rec.chosen == "alpha"
    finally:
        store.close()

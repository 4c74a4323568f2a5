"""The Redis the shared-state tests use: this machine's (127.0.0.1:6379, or
``POLYROUTE_TEST_REDIS``), a fresh key prefix per test so parallel runs never collide, and the
test skipped, saying why, only where no Redis answers."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

REDIS_URL = os.environ.get("POLYROUTE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class RedisSpace:
    url: str
    prefix: str

    def shared(self, **options: object) -> dict[str, object]:
        """A ``shared:`` config section for this space."""
        return {"url": self.url, "prefix": self.prefix, **options}


def _reachable() -> str | None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return None
    except redis.exceptions.RedisError as exc:
        return f"no Redis at {REDIS_URL} ({exc}); start one (docs/gateway.md, \"Shared state " \
               f"and replicas\") or set POLYROUTE_TEST_REDIS"
    finally:
        client.close()


@contextlib.contextmanager
def new_space() -> Iterator[RedisSpace]:
    """A key prefix of its own on the test Redis (the test skipped if none answers), deleted
    afterwards."""
    why = _reachable()
    if why is not None:
        pytest.skip(why)
    space = RedisSpace(REDIS_URL, f"prtest-{uuid.uuid4().hex[:12]}")
    yield space
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{space.prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_space() -> Iterator[RedisSpace]:
    with new_space() as space:
        yield space


class CuttableProxy:
    """A TCP proxy to Redis on a loopback port that a test can cut (connections reset, new
    ones refused) and restore: Redis "briefly unreachable" without stopping the shared one."""

    def __init__(self, target_port: int = 6379) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.port = 0

    def start(self) -> CuttableProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        if self._listener is not None:
            try:  # wakes the thread blocked in accept(), which a close alone would not
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        """Listen again on the same port."""
        self.start()

    def stop(self) -> None:
        self.cut()

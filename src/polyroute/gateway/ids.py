"""Request ids: random 128-bit hex, as ``uuid.uuid4().hex``, drawn from a pool.

Why a pool: ``uuid4`` reads 16 bytes from ``os.urandom`` per call, and CPython releases the GIL
around that system call. On the event loop of a busy gateway the decision and store threads are
waiting for the GIL, so every request id handed it away and the loop then waited a switch
interval to get it back — uuid4 was 5% of the routed path's samples in py-spy. One read of
:data:`POOL` ids' worth of bytes keeps the ids unpredictable (the same kernel source) with one
release per :data:`POOL` requests.
"""

from __future__ import annotations

import os
import threading
import uuid

#: Ids drawn per read of the kernel's random source.
POOL = 256

_lock = threading.Lock()
_pool: list[str] = []


def request_id() -> str:
    """A new random (version-4) UUID as 32 hex digits."""
    with _lock:
        if not _pool:
            raw = os.urandom(16 * POOL)
            _pool.extend(uuid.UUID(bytes=raw[i:i + 16], version=4).hex
                         for i in range(0, len(raw), 16))
        return _pool.pop()

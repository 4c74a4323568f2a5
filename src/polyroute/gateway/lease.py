"""A replica's lease on the store it shares: heartbeat, and close the requests of stopped ones.

Why: replicas sharing one PostgreSQL store each own the requests they started (``owner``). A
replica killed mid-request leaves rows ``in_progress``; nobody else may close them while their
owner lives (it is still answering them), and they must not stay open for ever. So every replica
heartbeats, and now and then marks ``interrupted`` the in-progress requests of replicas not seen
for ``store.replica_dead_after`` seconds (booking what they served as spend). The writes go
through the store's ordered writer like any other; during a database outage they wait there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

logger = logging.getLogger(__name__)


async def keep_lease(store: Any) -> None:
    """Run until cancelled: heartbeat every sixth of ``replica_dead_after``, recovering the
    stopped replicas' requests each time (one recovery in flight at most)."""
    interval = store.replica_dead_after / 6
    pending: asyncio.Future | None = None
    while True:
        store.heartbeat()
        if pending is None or pending.done():
            pending = asyncio.wrap_future(store.recover_abandoned(store.replica_dead_after))
        with contextlib.suppress(asyncio.TimeoutError):
            n = await asyncio.wait_for(asyncio.shield(pending), interval)
            if n:
                logger.warning("%s: %d request(s) of a stopped replica were marked "
                               "interrupted", store.location, n)
            await asyncio.sleep(interval)

"""Online-learning updates shared by replicas: feedback given to one teaches every one.

A router that ``learns_online`` (the bandit) folds each feedback score into its state at once.
With several replicas, the replica that took the feedback appends it — the routing text, the
model and the score — to the Redis stream ``<prefix>:feedback`` (capped at ``MAXLEN`` entries);
every replica reads the stream and feeds the entries of the others to its own router. Why a
stream rather than pub/sub: a replica that lost Redis for a while reads on from the last entry
it saw when it is back, so every replica ends up having learnt the same scores (in the order they
were given), just later; the delay is measured in ``tests/gateway/test_shared_feedback.py``. A
replica starting afresh learns from the stream's new entries only: what came before is in its
router's files or in the store (``polyroute export-feedback`` for retraining).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from polyroute.config import SharedConfig
from polyroute.gateway.shared.base import FeedbackSync
from polyroute.gateway.shared.redis_client import REDIS_ERRORS, Outage

logger = logging.getLogger(__name__)

#: Entries the stream keeps (approximately): far more than replicas fall behind in an outage.
MAXLEN = 10_000


class RedisFeedbackSync(FeedbackSync):
    def __init__(self, config: SharedConfig) -> None:
        self._name = f"{config.prefix}:feedback"
        self._me = uuid.uuid4().hex[:12]
        self._client: aioredis.Redis | None = None
        self._learn: Callable[[str, str, float], Awaitable[bool]] | None = None
        self._loop: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._outage = Outage("online-learning updates are not shared until it is back")

    def open(self, client: aioredis.Redis) -> None:
        self._client = client

    async def start(self, learn: Callable[[str, str, float], Awaitable[bool]]) -> None:
        assert self._client is not None
        self._learn = learn
        try:  # read on from what is there now: earlier scores are in the router's state
            newest = await self._client.xrevrange(self._name, count=1)
        except REDIS_ERRORS as exc:  # Redis away: from the start of what it holds when back
            self._outage.seen(exc)
            newest = []
        last = newest[0][0] if newest else "0-0"
        self._loop = asyncio.create_task(self._read(last))

    def published(self, text: str, model: str, score: float) -> None:
        task = asyncio.ensure_future(self._append(text, model, score))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _append(self, text: str, model: str, score: float) -> None:
        assert self._client is not None
        try:
            await self._client.xadd(self._name, {"sender": self._me, "text": text,
                                                 "model": model, "score": repr(float(score))},
                                    maxlen=MAXLEN, approximate=True)
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)

    async def _read(self, last: str) -> None:
        assert self._client is not None and self._learn is not None
        while True:
            try:
                found = await self._client.xread({self._name: last}, block=1000, count=100)
            except REDIS_ERRORS as exc:
                self._outage.seen(exc)
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in found or ():
                for entry_id, fields in entries:
                    last = entry_id
                    if fields.get("sender") == self._me:
                        continue
                    try:
                        await self._learn(fields["text"], fields["model"],
                                          float(fields["score"]))
                    except (KeyError, ValueError) as exc:  # not ours to trust: skip it
                        logger.warning("skipped a malformed feedback entry %s (%s)",
                                       entry_id, exc)

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

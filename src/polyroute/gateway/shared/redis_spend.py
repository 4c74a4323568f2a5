"""The spend ledger shared by replicas in Redis: the admission rule of ``spend.py``, atomically.

Per limited key (``{id}`` below is the key id, in braces so a cluster keeps a key's entries on
one node): ``<prefix>:spend:{id}:res`` is a sorted set of in-flight reservation ids scored by the
time (Redis's clock, ms) they expire, ``…:amt`` a hash of their dollars, and
``…:tally:<period start>`` the dollars spent in the current period.

Why the bound of ``spend.py`` still holds: each admission is one Lua script that reads spent +
reserved over *every* replica's reservations and, only if the rule admits, adds the reservation,
with nothing in between (Redis runs a script alone). "Nothing else in flight" now means on any
replica, and a lone gateway-capped request may not reserve more than a minimal answer's cost
(``lone_max``), exactly as in one process. A finish is another script: remove the reservation,
add the actual cost (≤ it). So X = spent + reserved still grows only at admission, and the proof
goes through unchanged. (The cap for a request without ``max_tokens`` is computed here from the
numbers a refused script returns, then tried again; the script, not the computation, decides.)

Crashed replicas: a live replica pushes its reservations' expiry forward every ``ttl / 3`` s;
one that died stops, and when its reservations expire the next script touching the key *charges
them in full* to the tally — the cost they bounded is unknown, and charging the bound keeps X
unchanged, so the limit stays safe (the key may be refused slightly early, never late). A late
settle of an expired reservation adds only what its cost exceeds the charged bound by (0).

Seeding the tally: a tally is created only from the store, by ``SET … NX``: the first replica
to find it absent (at start, in a new period, or after Redis lost its data) reads the store's
spend for the period (after flushing its own writes) and writes it only if no replica has yet;
every later replica and every finish finds it present and only adds to it. So the store's total
enters once, however many replicas start. A finish whose tally is absent does not create it (it
would hide the store's total); its cost is in its row, which the seed reads. The one window left:
a request finishing on another replica *while* a seed reads the store is counted twice if its
row was committed before the read (early refusal: safe) or lost if its row was not yet committed
(with a shared PostgreSQL store a row commits in milliseconds; at the first start nothing else
serves the key, so there is no such request).

Redis unreachable while serving: admissions of limited keys fail closed (503, see
``redis_client.py``); settles that fail are retried with the heartbeats, and until then their
reservations stay held (counted), so nothing is under-counted.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from polyroute.config import KeyConfig, SharedConfig
from polyroute.gateway.shared.base import SpendLedger
from polyroute.gateway.shared.redis_client import (
    REDIS_ERRORS,
    Outage,
    spend_unavailable,
)
from polyroute.gateway.spend import (
    MIN_ANSWER_TOKENS,
    Reservation,
    affordable_tokens,
    period_start,
    spend_refusal,
)
from polyroute.store import Store

logger = logging.getLogger(__name__)

#: Shared by the scripts: expire dead reservations (charging them), then read the key's state.
_STATE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function state(now)
  local tally = redis.call('GET', KEYS[3])
  if not tally then return nil end
  local spent = tonumber(tally)
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  if #dead > 0 then
    local charge = 0
    for _, id in ipairs(dead) do
      charge = charge + tonumber(redis.call('HGET', KEYS[2], id) or '0')
      redis.call('HDEL', KEYS[2], id)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    if charge > 0 then spent = tonumber(redis.call('INCRBYFLOAT', KEYS[3], charge)) end
  end
  local reserved = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do reserved = reserved + tonumber(v) end
  return spent, reserved, redis.call('ZCARD', KEYS[1])
end
"""

#: KEYS res, amt, tally. -> {'unseeded'} | {'ok', spent, reserved, holds}
_CHECK = _STATE + """
local spent, reserved, holds = state(now_ms())
if spent == nil then return {'unseeded'} end
return {'ok', tostring(spent), tostring(reserved), holds}
"""

#: KEYS res, amt, tally; ARGV limit, amount, lone_max, id, ttl_ms, keep_s.
#: Admit when the limit is not used up and the amount fits, or nothing is in flight anywhere and
#: the amount is at most lone_max (the rule of spend.py).
_RESERVE = _STATE + """
local now = now_ms()
local spent, reserved, holds = state(now)
if spent == nil then return {'unseeded'} end
local limit, amount, lone_max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local x = spent + reserved
if x < limit and (x + amount <= limit or (holds == 0 and amount <= lone_max)) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[4])
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
  return {'ok', tostring(spent), tostring(reserved), holds}
end
return {'refused', tostring(spent), tostring(reserved), holds}
"""

#: KEYS res, amt, tally; ARGV id ('' for none), cost, amount. Release and add, in one step.
_SETTLE = """
local held = 0
if ARGV[1] ~= '' then
  held = redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
local add = tonumber(ARGV[2])
if held == 0 then add = add - tonumber(ARGV[3]) end
if add > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('INCRBYFLOAT', KEYS[3], add)
end
return held
"""

#: KEYS res, amt; ARGV ttl_ms, keep_s, ids... Push a live replica's reservations' expiry
#: forward (and their containers', so a request longer than keep_s keeps its reservation).
_REFRESH = """
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 0
"""

#: Largest finite double: a client-capped request has no lone limit (the client chose its cap).
_NO_LONE_LIMIT = "1e308"
#: Admission tries for a request without ``max_tokens`` (each a fresh look at the remainder).
_TRIES = 4


@dataclass(eq=False)
class SharedReservation(Reservation):
    """A reservation held in Redis under ``id``."""

    id: str = ""


class RedisSpend(SpendLedger):
    """Limited keys' tallies and reservations in Redis (see the module docstring)."""

    def __init__(self, keys: Sequence[KeyConfig], config: SharedConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys = {k.id: k for k in keys if k.spend_limit is not None}
        self._config = config
        self._clock = clock
        self._ttl_ms = int(config.reservation_ttl * 1000)
        #: Seconds the reservation containers of an idle key are kept (clean-up only).
        self._keep_s = max(3600, 3 * int(config.reservation_ttl))
        self._client: aioredis.Redis | None = None
        self._store: Store | None = None
        self._scripts: dict[str, object] = {}
        #: Reservations this replica holds (id -> key id), refreshed by the heartbeat.
        self._live: dict[str, str] = {}
        #: Settles that failed (Redis away), retried with the heartbeats, oldest first.
        self._retry: collections.deque[tuple[str, str, float, float]] = \
            collections.deque(maxlen=100_000)
        self._tasks: set[asyncio.Task] = set()
        self._heartbeat: asyncio.Task | None = None
        self._outage = Outage("requests of keys with a spend limit are refused (503)")

    # -- keys ------------------------------------------------------------------------------------
    def _names(self, key: KeyConfig) -> list[str]:
        base = f"{self._config.prefix}:spend:{{{key.id}}}"
        since = period_start(key.spend_period, self._clock())
        period = "total" if since is None else str(int(since))
        return [f"{base}:res", f"{base}:amt", f"{base}:tally:{period}"]

    def _tally_ttl(self, key: KeyConfig) -> int | None:
        """Seconds a tally outlives its period (a day's or a month's keys do not pile up)."""
        return {"day": 2 * 86_400, "month": 33 * 86_400}.get(key.spend_period)

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self, client: aioredis.Redis) -> None:
        self._client = client
        for name, text in (("check", _CHECK), ("reserve", _RESERVE), ("settle", _SETTLE),
                           ("refresh", _REFRESH)):
            self._scripts[name] = client.register_script(text)

    async def load(self, store: Store) -> None:
        """Seed the tally of every limited key that has none yet (see the module docstring)."""
        self._store = store
        for key in self._keys.values():
            await self._seed(key, flush=False)
        self._heartbeat = asyncio.create_task(self._beat())

    async def _seed(self, key: KeyConfig, *, flush: bool = True) -> None:
        assert self._client is not None and self._store is not None
        tally = self._names(key)[2]
        if await self._client.exists(tally):
            return
        store = self._store

        def read() -> float:
            if flush:
                store.flush(5)
            since = period_start(key.spend_period, self._clock())
            return store.spend_by_key(since).get(key.id, 0.0)

        spent = await asyncio.to_thread(read)
        written = await self._client.set(tally, repr(spent), nx=True, ex=self._tally_ttl(key))
        if written:
            logger.info("shared state: seeded key %r's spend tally with $%.4f from the store",
                        key.id, spent)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._client is not None:
            await self._retry_settles()

    # -- the ledger ------------------------------------------------------------------------------
    def limits(self, key: KeyConfig | None) -> bool:
        return key is not None and key.id in self._keys

    async def _run(self, name: str, key: KeyConfig, *args: object) -> list:
        """A script on ``key``'s entries, seeding an absent tally once; 503 if Redis is away."""
        script = self._scripts[name]
        try:
            result = await script(keys=self._names(key), args=list(args))  # type: ignore[operator]
            if result[0] == "unseeded":
                await self._seed(key)
                result = await script(keys=self._names(key), args=list(args))  # type: ignore
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)
            raise spend_unavailable() from None
        if result[0] == "unseeded":  # the tally vanished again at once: refuse, safely
            raise spend_unavailable()
        return result

    async def check(self, key: KeyConfig | None) -> None:
        if not self.limits(key):
            return
        assert key is not None and key.spend_limit is not None
        _, spent, reserved, holds = await self._run("check", key)
        spent, reserved = float(spent), float(reserved)
        if spent + reserved >= key.spend_limit:
            raise spend_refusal(key, spent, reserved, int(holds))

    async def _reserve(self, key: KeyConfig, amount: float, lone_max: str
                       ) -> tuple[SharedReservation | None, float, float, int]:
        rid = uuid.uuid4().hex
        status, spent, reserved, holds = await self._run(
            "reserve", key, repr(key.spend_limit), repr(amount), lone_max, rid, self._ttl_ms,
            self._keep_s)
        if status != "ok":
            return None, float(spent), float(reserved), int(holds)
        self._live[rid] = key.id
        return SharedReservation(key.id, amount, id=rid), float(spent), float(reserved), \
            int(holds)

    async def reserve(self, key: KeyConfig | None, amount: float) -> Reservation | None:
        if not self.limits(key):
            return None
        assert key is not None
        amount = max(float(amount), 0.0)
        held, spent, reserved, holds = await self._reserve(key, amount, _NO_LONE_LIMIT)
        if held is None:
            raise spend_refusal(key, spent, reserved, holds, amount)
        return held

    async def reserve_answer(self, key: KeyConfig | None, cost: Callable[[int], float],
                             ceiling: int) -> tuple[Reservation | None, int | None]:
        """As :meth:`SpendTracker.reserve_answer`, over every replica: first try the full
        ceiling; when it does not fit, cap at what the returned remainder pays for and try
        again (another replica may have moved it meanwhile; the script decides)."""
        if not self.limits(key):
            return None, None
        assert key is not None and key.spend_limit is not None
        tokens = max(ceiling, MIN_ANSWER_TOKENS)
        lone_max = repr(max(cost(MIN_ANSWER_TOKENS), 0.0))
        for _ in range(_TRIES):
            amount = max(cost(tokens), 0.0)
            held, spent, reserved, holds = await self._reserve(key, amount, lone_max)
            if held is not None:
                return held, tokens
            left = key.spend_limit - spent - reserved
            if left <= 0:
                raise spend_refusal(key, spent, reserved, holds)
            tokens = affordable_tokens(cost, ceiling, left)
            if tokens < MIN_ANSWER_TOKENS:
                if holds:
                    raise spend_refusal(key, spent, reserved, holds, cost(MIN_ANSWER_TOKENS))
                tokens = MIN_ANSWER_TOKENS
        raise spend_refusal(key, spent, reserved, holds, amount)

    def settle(self, reservation: Reservation | None, key_id: str | None, cost: float) -> None:
        """Release and add in one script, scheduled from the synchronous finish (the
        reservation stays counted until it runs: safe)."""
        key = self._keys.get(key_id) if key_id else None
        if reservation is not None:
            if reservation.released:
                return
            reservation.released = True
            key = self._keys.get(reservation.key_id)
        if key is None or (reservation is None and cost <= 0):
            return
        rid = reservation.id if isinstance(reservation, SharedReservation) else ""
        self._live.pop(rid, None)
        amount = reservation.amount if reservation is not None else 0.0
        task = asyncio.get_running_loop().create_task(
            self._settle(key.id, rid, max(cost, 0.0), amount))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, key_id: str, rid: str, cost: float, amount: float) -> bool:
        try:
            await self._scripts["settle"](  # type: ignore[operator]
                keys=self._names(self._keys[key_id]), args=[rid, repr(cost), repr(amount)])
            return True
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)
            self._retry.append((key_id, rid, cost, amount))
            return False

    async def _retry_settles(self) -> None:
        for _ in range(len(self._retry)):
            if not await self._settle(*self._retry.popleft()):
                break

    async def _beat(self) -> None:
        """Every ttl/3 s: keep this replica's reservations alive, retry failed settles."""
        while True:
            await asyncio.sleep(self._config.reservation_ttl / 3)
            by_key: dict[str, list[str]] = {}
            for rid, key_id in self._live.items():
                by_key.setdefault(key_id, []).append(rid)
            try:
                for key_id, ids in by_key.items():
                    await self._scripts["refresh"](  # type: ignore[operator]
                        keys=self._names(self._keys[key_id])[:2],
                        args=[self._ttl_ms, self._keep_s, *ids])
                await self._retry_settles()
            except REDIS_ERRORS as exc:
                self._outage.seen(exc)

    # -- what tests and operators read -------------------------------------------------------
    async def snapshot(self, key_id: str) -> tuple[float, float, int]:
        """(spent, reserved, in-flight) of ``key_id`` over every replica."""
        _, spent, reserved, holds = await self._run("check", self._keys[key_id])
        return float(spent), float(reserved), int(holds)

"""Rate-limit windows shared by replicas: one Redis hash per key, counted by one script.

``<prefix>:rate:{id}`` holds the window number (Redis's clock: every replica counts in the same
minute), its requests and its tokens; the admission script rolls the window, checks both limits
and counts the request in one step, so a key's ``rpm`` holds over every replica. The rule is in
:class:`~polyroute.gateway.shared.base.RateLimits`; while Redis is unreachable requests are
admitted uncounted (``redis_client.py`` says why).
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from polyroute.config import KeyConfig, SharedConfig
from polyroute.gateway.shared.base import RATE_WINDOW, RateCharge, RateLimits, rate_refusal
from polyroute.gateway.shared.redis_client import REDIS_ERRORS, Outage

_ROLL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local win = tonumber(ARGV[1])
local w = math.floor(now / win)
local cur = redis.call('HMGET', KEYS[1], 'w', 'req', 'tok')
local req, tok = 0, 0
if tonumber(cur[1]) == w then req = tonumber(cur[2]) or 0; tok = tonumber(cur[3]) or 0 end
local retry = (w + 1) * win - now
"""

#: KEYS rate; ARGV window_s, rpm (-1: none), tpm (-1: none), tokens.
_ADMIT = _ROLL + """
local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if rpm >= 0 and req >= rpm then return {'requests', req, tostring(retry)} end
if tpm >= 0 and tok > 0 and tok + tokens > tpm then return {'tokens', tok, tostring(retry)} end
redis.call('HSET', KEYS[1], 'w', w, 'req', req + 1, 'tok', tok + tokens)
redis.call('EXPIRE', KEYS[1], math.ceil(2 * win))
return {'ok', req + 1, tostring(retry)}
"""

#: KEYS rate; ARGV window_s, token delta (actual - estimated).
_SETTLE = _ROLL + """
tok = math.max(0, tok + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'w', w, 'req', req, 'tok', tok)
redis.call('EXPIRE', KEYS[1], math.ceil(2 * win))
return tok
"""


class RedisRates(RateLimits):
    def __init__(self, config: SharedConfig) -> None:
        self._config = config
        self._scripts: dict[str, object] = {}
        self._client: aioredis.Redis | None = None
        self._tasks: set[asyncio.Task] = set()
        self._outage = Outage("rate limits are not enforced until it is back")

    def open(self, client: aioredis.Redis) -> None:
        self._client = client
        self._scripts = {"admit": client.register_script(_ADMIT),
                         "settle": client.register_script(_SETTLE)}

    def _name(self, key_id: str) -> str:
        return f"{self._config.prefix}:rate:{{{key_id}}}"

    async def admit(self, key: KeyConfig, tokens: int) -> RateCharge:
        limits = [RATE_WINDOW, -1 if key.rpm is None else key.rpm,
                  -1 if key.tpm is None else key.tpm, tokens]
        try:
            status, used, retry = await self._scripts["admit"](  # type: ignore[operator]
                keys=[self._name(key.id)], args=limits)
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)
            return RateCharge(key.id, tokens, settled=True)  # uncounted: nothing to settle
        if status == "requests":
            raise rate_refusal(key, "requests", int(used), key.rpm or 0, float(retry))
        if status == "tokens":
            raise rate_refusal(key, "tokens", int(used), key.tpm or 0, float(retry))
        return RateCharge(key.id, tokens)

    def settle(self, charge: RateCharge | None, tokens: int | None) -> None:
        if charge is None or charge.settled:
            return
        charge.settled = True
        if tokens is None or tokens == charge.tokens:
            return
        task = asyncio.get_running_loop().create_task(
            self._settle(charge.key_id, tokens - charge.tokens))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, key_id: str, delta: int) -> None:
        try:
            await self._scripts["settle"](  # type: ignore[operator]
                keys=[self._name(key_id)], args=[RATE_WINDOW, delta])
        except REDIS_ERRORS as exc:
            self._outage.seen(exc)

    async def used(self, key_id: str) -> tuple[int, int]:
        """(requests, tokens) counted in ``key_id``'s current window, over every replica."""
        tokens = await self._scripts["settle"](  # type: ignore[operator]
            keys=[self._name(key_id)], args=[RATE_WINDOW, 0])
        assert self._client is not None
        requests = await self._client.hget(self._name(key_id), "req")
        return int(requests or 0), int(tokens)

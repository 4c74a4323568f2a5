"""Shared state across replicas, against the real Redis: several gateway-state instances in one
process stand for replicas (each with its own connection, as separate processes would have).

The end-to-end version, with real gateway processes, is ``test_replicas.py``.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import redis

from polyroute.config import GatewayConfig, KeyConfig, SharedConfig, validate_config
from polyroute.errors import ConfigError
from polyroute.gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from polyroute.gateway.errors import APIError
from polyroute.gateway.shared import RATE_WINDOW, open_shared
from polyroute.gateway.shared.redis_breakers import RedisBreakers
from polyroute.gateway.shared.redis_client import connect
from polyroute.gateway.shared.redis_rates import RedisRates
from polyroute.gateway.shared.redis_spend import RedisSpend
from polyroute.gateway.spend import MIN_ANSWER_TOKENS


class SpendStore:
    """The one store method the ledger reads (and its flush): spend per key since a time."""

    def __init__(self, spent: dict[str, float] | None = None) -> None:
        self.spent = spent or {}
        self.reads = 0

    def spend_by_key(self, since: float | None = None) -> dict[str, float]:
        self.reads += 1
        return dict(self.spent)

    def flush(self, timeout: float | None = None) -> None:
        pass


def _key(limit: float | None = 1.0, **more: object) -> KeyConfig:
    return KeyConfig(id="k", sha256="0" * 64, spend_limit=limit, spend_period="total", **more)


async def _replicas(space, n: int, keys, store=None, **options) -> list[RedisSpend]:
    """``n`` ledgers on one Redis prefix, each with its own connections (a replica each); a
    generous call timeout, as a loaded test machine is not an outage."""
    config = SharedConfig.model_validate(space.shared(**{"timeout": 10, **options}))
    out = []
    for _ in range(n):
        ledger = RedisSpend(keys, config)
        ledger.open(connect(config))
        await ledger.load(store or SpendStore())
        out.append(ledger)
    return out


async def _close(ledgers) -> None:
    for ledger in ledgers:
        await ledger.close()
        await ledger._client.aclose()


# -- spend ---------------------------------------------------------------------------------------
def test_concurrent_admissions_on_two_replicas_keep_the_limit(redis_space):
    """Many requests race on two replicas, each reserving its own cap and finishing at a random
    cost ≤ its reservation: the key ends at most one request's ceiling over its limit (the
    bound of spend.py, which must hold over replicas), and nothing stays reserved."""
    key, limit, ceiling = _key(0.05), 0.05, 0.004

    async def scenario() -> tuple[float, int, int]:
        a, b = await _replicas(redis_space, 2, [key])
        rng = random.Random(7)
        admitted = refused = 0

        async def one(i: int) -> None:
            nonlocal admitted, refused
            ledger = (a, b)[i % 2]
            amount = rng.uniform(0.1, 1.0) * ceiling
            try:
                held = await ledger.reserve(key, amount)
            except APIError as exc:
                assert exc.status == 429
                refused += 1
                return
            admitted += 1
            await asyncio.sleep(rng.uniform(0, 0.01))
            ledger.settle(held, key.id, amount * rng.uniform(0.5, 1.0))

        await asyncio.gather(*(one(i) for i in range(200)))
        await asyncio.gather(*(ledger.close() for ledger in (a, b)))
        spent, reserved, holds = await a.snapshot(key.id)
        assert reserved == 0 and holds == 0
        await _close([a, b])
        return spent, admitted, refused

    spent, admitted, refused = asyncio.run(scenario())
    assert admitted > 10 and refused > 0  # the limit was reached, under contention
    assert spent <= limit + ceiling


def test_gateway_capped_answers_race_and_the_lone_bound_holds(redis_space):
    """Requests without max_tokens (the gateway picks the cap) on three replicas: over-limit
    spend stays below one minimal answer's cost, as in one process."""
    key, limit = _key(0.02), 0.02
    per_token = 1e-5  # $ per completion token, so a MIN_ANSWER_TOKENS answer costs 1.6e-4

    async def scenario() -> tuple[float, list[int]]:
        replicas = await _replicas(redis_space, 3, [key])
        caps: list[int] = []

        async def one(i: int) -> None:
            ledger = replicas[i % 3]
            try:
                held, cap = await ledger.reserve_answer(key, lambda t: t * per_token, 256)
            except APIError:
                return
            caps.append(cap)
            await asyncio.sleep(0.001 * (i % 5))
            ledger.settle(held, key.id, cap * per_token)  # the answer used its whole cap

        await asyncio.gather(*(one(i) for i in range(150)))
        for ledger in replicas:
            await ledger.close()
        spent, _, _ = await replicas[0].snapshot(key.id)
        await _close(replicas)
        return spent, caps

    spent, caps = asyncio.run(scenario())
    assert min(caps) < 256  # some requests were capped to what was left
    assert spent <= limit + MIN_ANSWER_TOKENS * per_token + 1e-12


def test_two_replicas_starting_seed_the_tally_once(redis_space):
    """Each replica's store says $0.30 was spent (one shared store, read twice): the tally is
    $0.30, not $0.60, and a replica starting later does not add it again."""
    key = _key(1.0)

    async def scenario() -> float:
        a, b = await _replicas(redis_space, 2, [key], store=SpendStore({"k": 0.3}))
        late, = await _replicas(redis_space, 1, [key], store=SpendStore({"k": 0.3}))
        spent, _, _ = await late.snapshot("k")
        await _close([a, b, late])
        return spent

    assert asyncio.run(scenario()) == pytest.approx(0.3)


def test_a_crashed_replicas_reservation_expires_and_is_charged_in_full(redis_space):
    """A replica that dies holding a reservation stops refreshing it: when it expires the
    others see it gone and its whole amount charged (its real cost is unknown), so the key's
    spend never falls below what may have been spent."""
    key = _key(1.0)

    async def scenario() -> tuple[float, float, int]:
        crashed, alive = await _replicas(redis_space, 2, [key], reservation_ttl=1)
        await crashed.reserve(key, 0.25)
        crashed._heartbeat.cancel()  # the process is gone: no heartbeat, no settle
        await crashed._client.aclose()
        kept = await alive.reserve(key, 0.1)  # alive keeps its own reservation refreshed
        while (await alive.snapshot("k"))[2] > 1:
            await asyncio.sleep(0.05)
        spent, reserved, holds = await alive.snapshot("k")
        alive.settle(kept, "k", 0.05)
        await _close([alive])
        return spent, reserved, holds

    spent, reserved, holds = asyncio.run(scenario())
    assert spent == pytest.approx(0.25) and reserved == pytest.approx(0.1) and holds == 1


def test_an_unreachable_redis_fails_spend_checks_closed():
    """Redis gone while serving: a limited key's request is refused with 503 (never admitted
    unchecked), and says why."""
    config = SharedConfig(url="redis://127.0.0.1:1/0", timeout=0.2)
    key = _key(1.0)

    async def scenario() -> APIError:
        ledger = RedisSpend([key], config)
        ledger.open(connect(config))
        with pytest.raises(APIError) as exc:
            await ledger.check(key)
        await ledger._client.aclose()
        return exc.value

    err = asyncio.run(scenario())
    assert err.status == 503 and err.code == "shared_state_down"
    assert "spend ledger (Redis) is unreachable" in err.message


def test_a_configured_but_unreachable_redis_stops_the_gateway_before_it_serves(tmp_path):
    config = validate_config({
        "backends": [{"name": "a", "base_url": "http://127.0.0.1:9/v1",
                      "input_price_per_mtok": 1, "output_price_per_mtok": 1}],
        "router": {"path": str(tmp_path)}, "server": {"require_auth": False},
        "shared": "redis://:hunter2@127.0.0.1:1/0"})
    with pytest.raises(ConfigError) as exc:
        open_shared(config)
    assert "shared: cannot reach Redis at redis://:***@127.0.0.1:1/0" in str(exc.value)
    assert "hunter2" not in str(exc.value)


# -- rate limits ---------------------------------------------------------------------------------
def test_rpm_holds_across_replicas(redis_space):
    """A key with rpm 5 sends 16 requests alternating over two replicas: at most 5 are admitted
    per minute window (the windows the run touched, by Redis's clock), the rest get 429 with a
    Retry-After within the minute."""
    key = _key(None, rpm=5)
    config = SharedConfig.model_validate(redis_space.shared())

    async def scenario() -> tuple[int, list[int], int]:
        rates = []
        for _ in range(2):
            r = RedisRates(config)
            r.open(connect(config))
            rates.append(r)
        clock = redis.Redis.from_url(config.url)
        first = clock.time()[0] // RATE_WINDOW
        admitted, waits = 0, []
        for i in range(16):
            try:
                await rates[i % 2].admit(key, 10)
                admitted += 1
            except APIError as exc:
                assert exc.status == 429 and exc.code == "rate_limit_exceeded"
                waits.append(int(exc.headers["retry-after"]))
        windows = int(clock.time()[0] // RATE_WINDOW - first) + 1
        clock.close()
        for r in rates:
            await r._client.aclose()
        return admitted, waits, windows

    admitted, waits, windows = asyncio.run(scenario())
    assert admitted <= 5 * windows and len(waits) >= 16 - 5 * windows
    assert all(1 <= w <= RATE_WINDOW for w in waits)


def test_tpm_counts_actual_tokens_across_replicas(redis_space):
    """tpm 100: a request estimated at 10 tokens that used 95 leaves no room for another 10
    on the other replica (in the same window)."""
    config = SharedConfig.model_validate(redis_space.shared())

    async def scenario(key_id: str) -> tuple[int, int | None] | None:
        key = _key(None, tpm=100).model_copy(update={"id": key_id})
        a, b = RedisRates(config), RedisRates(config)
        a.open(connect(config))
        b.open(connect(config))
        window = (await a._client.time())[0] // RATE_WINDOW
        charge = await a.admit(key, 10)
        a.settle(charge, 95)
        await asyncio.gather(*a._tasks)
        try:
            await b.admit(key, 10)
            status = None
        except APIError as exc:
            status = exc.status
        same = (await a._client.time())[0] // RATE_WINDOW == window
        used = await b.used(key_id)
        for r in (a, b):
            await r._client.aclose()
        return (used[1], status) if same else None

    # A run that straddles a minute boundary (the window resets) is run again: two in a row
    # cannot both straddle one, so the test never passes without having checked.
    result = asyncio.run(scenario("k")) or asyncio.run(scenario("k-again"))
    assert result == (95, 429)


# -- breakers ------------------------------------------------------------------------------------
async def _breaker_replica(config: SharedConfig, threshold: int
                           ) -> tuple[RedisBreakers, CircuitBreaker]:
    """One replica's breaker for backend alpha, its transitions shared."""
    sync = RedisBreakers(config)
    sync.open(connect(config))
    breaker = CircuitBreaker(failure_threshold=threshold, cooldown=30)
    sync.attach([("alpha", breaker)])
    await sync.start()
    return sync, breaker


async def _close_breakers(syncs) -> None:
    for sync in syncs:
        await sync.close()
        await sync._client.aclose()


def test_a_breaker_opened_on_one_replica_is_skipped_on_the_other(redis_space):
    config = SharedConfig.model_validate(redis_space.shared())

    async def scenario() -> tuple[str, bool, str]:
        (sync_a, a), (sync_b, b) = [await _breaker_replica(config, 3) for _ in range(2)]
        for _ in range(3):
            a.record_failure()
        assert a.state == OPEN
        while b.state != OPEN:  # the verdict travels over pub/sub
            await asyncio.sleep(0.01)
        allowed = b.allow()
        # A replica starting now reads the open breaker from its key.
        sync_late, late = await _breaker_replica(config, 3)
        await _close_breakers([sync_a, sync_b, sync_late])
        return b.state, allowed, late.state

    state, allowed, late_state = asyncio.run(scenario())
    assert state == OPEN and not allowed and late_state == OPEN


def test_a_successful_probe_closes_the_breaker_everywhere(redis_space):
    config = SharedConfig.model_validate(redis_space.shared())

    async def scenario() -> str:
        (sync_a, a), (sync_b, b) = [await _breaker_replica(config, 1) for _ in range(2)]
        a.record_failure()
        while b.state != OPEN:
            await asyncio.sleep(0.01)
        a.state = HALF_OPEN  # a's cooldown ended and its probe came back fine
        a.record_success()
        while b.state != CLOSED:
            await asyncio.sleep(0.01)
        await _close_breakers([sync_a, sync_b])
        return b.state

    assert asyncio.run(scenario()) == CLOSED


# -- config --------------------------------------------------------------------------------------
def _config(tmp_path, **more) -> GatewayConfig:
    return validate_config({
        "backends": [{"name": "a", "base_url": "http://127.0.0.1:9/v1",
                      "input_price_per_mtok": 1, "output_price_per_mtok": 1}],
        "router": {"path": str(tmp_path)}, "server": {"require_auth": False}, **more})


def test_shared_takes_a_url_or_a_mapping_and_rejects_other_schemes(tmp_path):
    assert _config(tmp_path, shared="redis://127.0.0.1:6379/0").shared.prefix == "polyroute"
    assert _config(tmp_path, shared={"url": "redis://h:1/2", "prefix": "team"}).shared.prefix \
        == "team"
    with pytest.raises(ConfigError, match="shared.url: must be a Redis URL"):
        _config(tmp_path, shared="postgresql://127.0.0.1/test")
    with pytest.raises(ConfigError, match="must be a database number"):
        _config(tmp_path, shared="redis://127.0.0.1:6379/zero")


def test_without_shared_the_state_is_per_process_and_said_so(tmp_path):
    state = open_shared(_config(tmp_path))
    assert not state.shared and "per-process" in state.describe()
    assert "set `shared: redis://…`" in state.describe()


def test_an_absent_tally_is_seeded_from_the_store_when_next_needed(redis_space):
    """A new day (a day-limited key), or Redis losing its data: the next admission finds no
    tally, seeds it from the store's spend for the period, then decides on it."""
    key = KeyConfig(id="k", sha256="0" * 64, spend_limit=1.0, spend_period="day")
    now = [86_400 * 20_000 + 3_600.0]  # some day, 01:00 UTC
    store = SpendStore({"k": 0.4})

    async def scenario() -> tuple[float, float, float]:
        config = SharedConfig.model_validate(redis_space.shared(timeout=10))
        ledger = RedisSpend([key], config, clock=lambda: now[0])
        ledger.open(connect(config))
        await ledger.load(store)
        first, _, _ = await ledger.snapshot("k")
        held = await ledger.reserve(key, 0.1)
        ledger.settle(held, "k", 0.1)
        await asyncio.gather(*ledger._tasks)
        store.spent = {"k": 0.05}  # what the store holds for the next day so far
        now[0] += 86_400
        second, _, _ = await ledger.snapshot("k")
        await ledger._client.delete(*[k async for k in ledger._client.scan_iter(
            match=f"{config.prefix}:spend:*:tally:*")])  # Redis lost its data
        store.spent = {"k": 0.9}
        lone = await ledger.reserve(key, 0.05)  # seeds $0.90: a lone request still starts
        with pytest.raises(APIError) as exc:  # beside it, $0.90 + 0.05 + 0.10 does not fit
            await ledger.reserve(key, 0.1)
        assert exc.value.status == 429
        third, _, _ = await ledger.snapshot("k")
        ledger.settle(lone, "k", 0.0)
        await _close([ledger])
        return first, second, third

    first, second, third = asyncio.run(scenario())
    assert (first, second, third) == (pytest.approx(0.4), pytest.approx(0.05),
                                      pytest.approx(0.9))


def test_a_live_replica_keeps_its_reservation_alive_past_the_ttl(redis_space):
    """The heartbeat pushes a held reservation's expiry forward, so a request longer than
    ``reservation_ttl`` keeps it (only a dead replica's expire)."""
    key = _key(1.0)

    async def scenario() -> tuple[int, float]:
        ledger, = await _replicas(redis_space, 1, [key], reservation_ttl=1)
        held = await ledger.reserve(key, 0.3)
        res = ledger._names(key)[0]
        first = await ledger._client.zscore(res, held.id)
        while await ledger._client.zscore(res, held.id) < first + 2000:  # two TTLs on
            await asyncio.sleep(0.1)
        _, reserved, holds = await ledger.snapshot("k")
        ledger.settle(held, "k", 0.1)
        await _close([ledger])
        return holds, reserved

    holds, reserved = asyncio.run(scenario())
    assert holds == 1 and reserved == pytest.approx(0.3)

"""Ask backends their calibration prompts, grade each answer, keep it in the store at once.

Why through the gateway's own backend client: the answers must come from exactly the backend
being onboarded (no fallback), with the same base URL, key, model id, timeouts and concurrency
limit the gateway will use to serve it, so what is measured is what will be served. A failed call
is retried a few times with backoff; a call that still fails is kept as failed (with what it cost
as far as known) and asked again on the next run, never counted as a wrong answer.

The run is resumable by construction: every answer is written to the store as it arrives, and a
prompt a backend has already answered is never sent again. ``budget`` is a hard cap on dollars
for the whole run: a call is only sent while the dollars spent plus the worst case of every call
in flight (its prompt and ``max_tokens`` at the backend's prices) fit.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from polyroute.config import BackendConfig
from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, input_tokens
from polyroute.data.references import Reference
from polyroute.gateway.answers import answer_text, call_cost, usage_tokens
from polyroute.gateway.backends import Backend
from polyroute.gateway.forward import AllFailed, Answer, forward
from polyroute.gateway.metrics import Metrics
from polyroute.grading import Grade, make_grader
from polyroute.store import CalibrationAnswer, Store

#: Answer length cap sent with every calibration call (bounds each call's worst-case cost).
DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True)
class CalibrationItem:
    """One prompt to ask, with what grades its answer (None: only a judge can)."""

    prompt_id: str
    prompt: str
    task: str
    reference: Reference | None = None
    #: What is sent: the prompt in its task's question format (options, tests, answer format;
    #: see :func:`polyroute.grading.prompts.task_prompt`); the prompt itself when None.
    message: str | None = None

    @property
    def text_sent(self) -> str:
        return self.message if self.message is not None else self.prompt


@dataclass(frozen=True)
class BackendPlan:
    """What one backend will be asked: ``todo`` are the items it has no answer for yet."""

    backend: BackendConfig
    items: tuple[CalibrationItem, ...]
    answered: frozenset[str] = frozenset()

    @property
    def todo(self) -> tuple[CalibrationItem, ...]:
        return tuple(i for i in self.items if i.prompt_id not in self.answered)

    def estimated_cost(self, output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> float:
        """Dollars for the items still to ask, at list prices, with answers of
        ``output_tokens`` (the data's convention); the worst case uses ``max_tokens``."""
        b = self.backend
        return sum(input_tokens(i.text_sent) * b.input_price_per_mtok
                   + output_tokens * b.output_price_per_mtok for i in self.todo) / 1e6


def call_bound(item: CalibrationItem, backend: BackendConfig, max_tokens: int) -> float:
    """The most one call can cost: its prompt and ``max_tokens`` at list prices (a little
    slack for chat-template tokens)."""
    return ((input_tokens(item.text_sent) + 32) * backend.input_price_per_mtok
            + max_tokens * backend.output_price_per_mtok) / 1e6


Grade_fn = Callable[[CalibrationItem, str], Grade]


def grade_by_reference(item: CalibrationItem, answer: str) -> Grade:
    """The grader of the item's metric, or ungraded when it has no usable reference."""
    if item.reference is None:
        return Grade.ungraded("no reference answer (give a judge to grade such prompts)")
    return make_grader(item.reference.metric).grade(answer, item.reference)


@dataclass
class Progress:
    """Counts a progress bar shows, updated as answers arrive."""

    answered: int = 0
    failed: int = 0
    spent: float = 0.0
    grading_cost: float = 0.0
    stopped_by_budget: bool = False
    by_backend: dict[str, list[CalibrationAnswer]] = field(default_factory=dict)


class _Budget:
    """Dollars spent plus held for calls in flight, against a hard cap (None = no cap)."""

    def __init__(self, cap: float | None, spent: float = 0.0) -> None:
        self.cap = cap
        self.spent = spent
        self.held = 0.0

    def hold(self, amount: float) -> bool:
        if self.cap is not None and self.spent + self.held + amount > self.cap:
            return False
        self.held += amount
        return True

    def settle(self, held: float, actual: float) -> None:
        self.held -= held
        self.spent += actual


async def collect(plans: Sequence[BackendPlan], api_keys: Mapping[str, str | None], store: Store,
                  *, breaker, max_tokens: int = DEFAULT_MAX_TOKENS, budget: float | None = None,
                  retries: int = 2, grade: Grade_fn = grade_by_reference,
                  on_answer: Callable[[Progress, CalibrationAnswer], None] | None = None
                  ) -> Progress:
    """Ask every plan's ``todo`` items; returns the counts (answers are in ``store``)."""
    progress = Progress()
    money = _Budget(budget)
    metrics = Metrics()
    clients = {p.backend.name: Backend(p.backend, api_keys.get(p.backend.name), breaker)
               for p in plans}
    for client in clients.values():
        client.open()
    try:
        async def ask_all(plan: BackendPlan) -> None:
            client = clients[plan.backend.name]
            slots = asyncio.Semaphore(min(plan.backend.max_concurrency, 8))

            async def one(item: CalibrationItem) -> None:
                async with slots:
                    if progress.stopped_by_budget:
                        return
                    bound = call_bound(item, plan.backend, max_tokens)
                    if not money.hold(bound):
                        progress.stopped_by_budget = True
                        return
                    record, grading_cost = await _ask(client, item, max_tokens, retries,
                                                      metrics, grade)
                    money.settle(bound, record.cost + grading_cost)  # a judge's calls count
                    store.record_calibration(record)
                    progress.spent = money.spent
                    progress.grading_cost += grading_cost
                    if record.error is None:
                        progress.answered += 1
                    else:
                        progress.failed += 1
                    progress.by_backend.setdefault(plan.backend.name, []).append(record)
                    if on_answer is not None:
                        on_answer(progress, record)

            await asyncio.gather(*(one(item) for item in plan.todo))

        await asyncio.gather(*(ask_all(p) for p in plans))
    finally:
        for client in clients.values():
            await client.aclose()
        store.flush()
    return progress


async def _ask(client: Backend, item: CalibrationItem, max_tokens: int, retries: int,
               metrics: Metrics, grade: Grade_fn) -> tuple[CalibrationAnswer, float]:
    """The item's answer as kept in the store, and what grading it cost (a judge's call)."""
    body = {"model": client.name, "messages": [{"role": "user", "content": item.text_sent}],
            "max_tokens": max_tokens, "temperature": 0}
    cfg = client.config
    error = "no attempt was made"
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        started = time.perf_counter()
        try:
            result = await forward([client], body, stream=False, client_wants_usage=False,
                                   request_id=f"onboard-{uuid.uuid4().hex}", attempts=[],
                                   metrics=metrics)
        except AllFailed as exc:
            error = exc.message
            continue
        assert isinstance(result, Answer)
        latency = time.perf_counter() - started
        if result.status != 200:
            error = f"the backend refused the calibration prompt (HTTP {result.status})"
            break
        text = answer_text(result.content)
        pt, ct = usage_tokens(result.usage)
        cost = call_cost(cfg, result.usage, item.text_sent, text)
        g = await asyncio.to_thread(grade, item, text)  # graders may run code or a judge
        return CalibrationAnswer(client.name, item.prompt_id, item.prompt, item.task, text,
                                 g.score, cost, latency, pt, ct, detail=g.detail,
                                 ts=time.time()), g.cost
    return CalibrationAnswer(client.name, item.prompt_id, item.prompt, item.task, None, None,
                             0.0, None, detail="", error=error, ts=time.time()), 0.0

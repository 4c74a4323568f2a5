"""Shadow mode: serve the default model, record what the router would have chosen, and on a
sampled share compare the routed model's answer with the served one, blind.

Why: a team wants to know that routing saves money on *its* traffic, at no loss it cares about,
before it lets the router decide. In shadow mode nothing changes for the client — the default
model answers (the routed ranking stays as fallbacks) — while every request's record keeps the
routed choice and its estimates under ``explain.shadow``; ``polyroute report`` turns those into
spend against the always-default and always-best baselines.

For a sampled request with a complete answer, after the client has it, the gateway asks the routed
model the same request and a judge backend which answer is better (:mod:`polyroute.grading.
pairwise`); the verdict and both calls' costs go to the store's ``shadow_comparisons``. These calls
are the operator's: they are not charged to the client's key and never delay its answer. Streamed
requests are not sampled (their text is relayed, not kept). A request whose routed choice *is* the
served model is recorded as ``same`` without any call.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from polyroute.config import ShadowConfig
from polyroute.gateway.answers import answer_text, call_cost
from polyroute.gateway.forward import AllFailed, Answer, forward
from polyroute.grading.pairwise import pairwise_prompt, parse_winner
from polyroute.store import ShadowComparison

if TYPE_CHECKING:
    from polyroute.gateway.service import Gateway

logger = logging.getLogger(__name__)

#: Tokens the judge may answer with (a sentence and the verdict line).
JUDGE_MAX_TOKENS = 256


def is_sampled(request_id: str, shadow: ShadowConfig) -> bool:
    """Whether this request is compared: a hash of its id and the seed, below ``sample``
    (reproducible, and independent of arrival order)."""
    if shadow.sample <= 0:
        return False
    digest = hashlib.sha256(f"{shadow.seed}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < shadow.sample


def routed_first(request_id: str) -> bool:
    """Whether the routed answer is shown to the judge first (drawn per request)."""
    return hashlib.sha256(f"order:{request_id}".encode()).digest()[0] % 2 == 0


class ShadowComparer:
    """Runs the sampled comparisons in the background; one per gateway."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._tasks: set[asyncio.Task] = set()

    def schedule(self, *, request_id: str, profile: str | None, prompt: str,
                 body: dict[str, Any], served: str, served_answer: Answer, routed: str,
                 served_cost: float | None, shadow: ShadowConfig) -> None:
        """Start the comparison of one request; returns at once."""
        task = asyncio.get_running_loop().create_task(self._compare(
            request_id, profile, prompt, body, served, served_answer, routed, served_cost,
            shadow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        """Let running comparisons finish (at shutdown), then cancel what is left."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()

    async def _compare(self, request_id: str, profile: str | None, prompt: str,
                       body: dict[str, Any], served: str, served_answer: Answer, routed: str,
                       served_cost: float | None, shadow: ShadowConfig) -> None:
        gw = self.gw
        routed_cost = judge_cost = 0.0
        verdict: str | None = None
        detail: str | None = None
        try:
            routed_answer = await self._ask(routed, body)
            routed_text = answer_text(routed_answer.content)
            routed_cost = call_cost(gw.backends[routed].config, routed_answer.usage, prompt,
                                    routed_text)
            served_text = answer_text(served_answer.content)
            first = routed_first(request_id)
            pair = (routed_text, served_text) if first else (served_text, routed_text)
            assert shadow.judge is not None
            judge_text = pairwise_prompt(prompt, *pair)
            reply = await self._ask(shadow.judge, {
                "model": shadow.judge, "temperature": 0, "max_tokens": JUDGE_MAX_TOKENS,
                "messages": [{"role": "user", "content": judge_text}]})
            reply_text = answer_text(reply.content)
            judge_cost = call_cost(gw.backends[shadow.judge].config, reply.usage, judge_text,
                                   reply_text)
            winner = parse_winner(reply_text)
            if winner is None:
                detail = f"the judge's reply names no winner: {reply_text[-80:]!r}"
            elif winner == "tie":
                verdict = "tie"
            else:
                verdict = "routed" if (winner == "first") == first else "served"
        except _Failed as exc:
            detail = str(exc)
        except asyncio.CancelledError:
            detail = "cancelled at shutdown"
            raise
        finally:
            gw.store.record_shadow_comparison(ShadowComparison(
                request_id, time.time(), profile, served, routed, verdict, served_cost,
                routed_cost, judge_cost, detail))
            gw.metrics.shadow_comparisons.labels(verdict or "none").inc()

    async def _ask(self, backend: str, body: dict[str, Any]) -> Answer:
        try:
            result = await forward([self.gw.backends[backend]], {**body, "stream": False},
                                   stream=False, client_wants_usage=False,
                                   request_id=f"shadow-{uuid.uuid4().hex}", attempts=[],
                                   metrics=self.gw.metrics)
        except AllFailed as exc:
            raise _Failed(f"{backend} did not answer: {exc.message}") from None
        assert isinstance(result, Answer)
        if result.status != 200:
            raise _Failed(f"{backend} refused the request (HTTP {result.status})")
        return result


class _Failed(Exception):
    """A shadow call that gave no answer; its reason goes to the comparison's detail."""


def same_model(request_id: str, profile: str | None, model: str,
               served_cost: float | None) -> ShadowComparison:
    """The record of a sampled request whose routed choice is the served model: no call."""
    return ShadowComparison(request_id, time.time(), profile, model, model, "same", served_cost,
                            0.0, 0.0, "the router chose the served model")

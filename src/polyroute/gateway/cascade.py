"""Serve a cascade: call the chain's cheap model first, escalate while its answer looks weak.

The chain, per-step priors and thresholds come from :class:`~polyroute.policies.CascadeDecision`
(computed on the decision thread); here each step is called, its answer scored by the profile's
:class:`~polyroute.policies.AnswerScorer`, and accepted or escalated with the decision's own
``accept``/``final`` rules, so the gateway and offline evaluation share one definition of a
cascade. Every call is recorded as an attempt and charged.

Every step is called non-streamed, also for a ``stream: true`` request: a streamed answer cannot
be taken back once its bytes reach the client, and a step must be complete to be judged. A
streamed request therefore gets the accepted answer replayed as one buffered SSE stream once the
cascade is over (:func:`~polyroute.gateway.streaming.completion_to_sse`): no incremental tokens,
and the first byte arrives only after the whole cascade — see docs/gateway.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.gateway.forward import AllFailed, Answer, all_failed, forward
from polyroute.policies import AnswerScorer, CascadeDecision
from polyroute.store import Attempt

if TYPE_CHECKING:  # the gateway's parts import the strategies that call these
    from polyroute.gateway.service import Gateway


@dataclass
class MultiCallResult:
    """The answer to return and every answer that was paid for (it included)."""

    answer: Answer
    #: Every complete answer paid for, in arrival order (the returned one included).
    called: list[Answer] = field(default_factory=list)
    #: Header value describing the calls (``gamma>alpha`` or ``alpha,beta``).
    label: str = ""


def answer_text(answer: Answer) -> str | None:
    """The first choice's message text ('' when empty); None when it calls tools instead, so a
    scorer does not mistake a tool call for an empty answer."""
    try:
        message = json.loads(answer.content)["choices"][0]["message"]
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    if not content and (message.get("tool_calls") or message.get("function_call")):
        return None
    if isinstance(content, list):  # content parts; one of another shape says nothing
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content if isinstance(content, str) else ""


async def call_one(gw: Gateway, backend: str, body: dict[str, Any], request_id: str,
                   attempts: list[Attempt]) -> Answer:
    """One non-streamed call to one backend with the usual breaker and slot rules."""
    result = await forward([gw.backends[backend]], body, stream=False, client_wants_usage=False,
                           request_id=request_id, attempts=attempts, metrics=gw.metrics)
    assert isinstance(result, Answer)
    return result


async def run_cascade(gw: Gateway, decision: CascadeDecision, scorer: AnswerScorer | None,
                      text: str, body: dict[str, Any], request_id: str,
                      attempts: list[Attempt], paid: list[Answer]) -> MultiCallResult:
    """Call the chain until a step is accepted; raise :class:`AllFailed` if nothing answered.

    A chain step that cannot be reached (cooling down, saturated, failing) is skipped — the
    next, stronger step is the natural replacement. If no step answered, the decision's
    fallbacks are tried in order as in plain routing. A client error relayed by a backend
    (e.g. 400 context too long) ends the cascade and is returned as is. Each answer is appended
    to ``paid`` as it arrives, so a request cancelled half-way is still charged for it.
    """
    called = paid
    confidences: list[float] = []
    steps: list[str] = []
    for j, model in enumerate(decision.chain):
        try:
            answer = await call_one(gw, model, body, request_id, attempts)
        except AllFailed:
            continue
        steps.append(model)
        if answer.status != 200:
            return MultiCallResult(answer, called, ">".join(steps))
        called.append(answer)
        content = answer_text(answer)
        score = None if scorer is None or content is None else scorer.score(text, content)
        confidences.append(decision.confidence(j, score))
        if decision.accept(j, score):
            break
    if called:
        return MultiCallResult(called[decision.final(confidences)], called, ">".join(steps))
    if not decision.fallbacks:
        raise all_failed([gw.backends[m] for m in decision.chain], attempts)
    result = await forward([gw.backends[m] for m in decision.fallbacks], body, stream=False,
                           client_wants_usage=False, request_id=request_id, attempts=attempts,
                           metrics=gw.metrics)
    assert isinstance(result, Answer)
    if result.status == 200:
        called.append(result)
    return MultiCallResult(result, called, result.backend.name)

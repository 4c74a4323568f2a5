"""Serve a top-k set: ask every member at once, then have the aggregator merge their answers.

The set comes from :class:`~polyroute.policies.SetDecision` (members best-estimate first). The
members are called concurrently, each with the usual breaker and slot rules; a member that fails
is left out. With two or more answers the profile's aggregator backend receives a merge prompt
(the question and the numbered candidate answers) and its chat completion is returned as the
answer; with one there is nothing to merge. If the aggregator fails, the best-ranked member's own
answer is returned rather than failing a request whose answers are already paid for. Every call
is non-streamed, since the merge needs every answer complete; a streamed request gets the result
replayed as SSE (``completion_to_sse``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from polyroute.gateway.cascade import MultiCallResult, answer_text, call_one
from polyroute.gateway.forward import AllFailed, Answer, all_failed, forward
from polyroute.policies import SetDecision
from polyroute.store import Attempt

if TYPE_CHECKING:  # the gateway's parts import the strategies that call these
    from polyroute.gateway.service import Gateway

MERGE_INSTRUCTIONS = (
    "You are given a user's request and several candidate answers written by different "
    "assistants. Write the single best answer to the request: keep what the candidates get "
    "right, fix or drop what they get wrong, and do not mention the candidates. Reply with the "
    "answer only.")


def merge_messages(question: str, answers: list[str]) -> list[dict[str, str]]:
    """The aggregator's chat: instructions, then the question and the numbered answers."""
    parts = [f"Request:\n{question}", "Candidate answers:"]
    parts += [f"[{i}]\n{text}" for i, text in enumerate(answers, 1)]
    return [{"role": "system", "content": MERGE_INSTRUCTIONS},
            {"role": "user", "content": "\n\n".join(parts)}]


async def run_topk(gw: Gateway, decision: SetDecision, aggregator: str, text: str,
                   body: dict[str, Any], request_id: str, attempts: list[Attempt],
                   paid: list[Answer]) -> MultiCallResult:
    """Answer with the merged answers of the set; raise :class:`AllFailed` if nobody answered.

    Each answer is appended to ``paid`` as it arrives (a cancelled request is still charged).
    """
    members = decision.members

    async def member(model: str) -> Answer:
        answer = await call_one(gw, model, body, request_id, attempts)
        if answer.status == 200:
            paid.append(answer)
        return answer

    results = await asyncio.gather(*(member(m) for m in members), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, AllFailed):
            raise r
    got = [r for r in results if isinstance(r, Answer)]
    answered = [a for a in got if a.status == 200]
    label = ",".join(members)
    if not answered:
        if got:  # a client error relayed by a backend: the request itself is at fault
            return MultiCallResult(got[0], paid, label)
        if not decision.fallbacks:
            raise all_failed([gw.backends[m] for m in members], attempts)
        result = await forward([gw.backends[m] for m in decision.fallbacks], body, stream=False,
                               client_wants_usage=False, request_id=request_id,
                               attempts=attempts, metrics=gw.metrics)
        assert isinstance(result, Answer)
        if result.status == 200:
            paid.append(result)
        return MultiCallResult(result, paid, label)
    if len(answered) == 1:
        return MultiCallResult(answered[0], paid, label)
    merge_body = dict(body)
    merge_body["messages"] = merge_messages(text, [answer_text(a) or "" for a in answered])
    merge_body.pop("n", None)
    try:
        merged = await call_one(gw, aggregator, merge_body, request_id, attempts)
    except AllFailed:
        return MultiCallResult(answered[0], paid, label)
    if merged.status != 200:
        return MultiCallResult(answered[0], paid, label)
    paid.append(merged)
    return MultiCallResult(merged, paid, label)

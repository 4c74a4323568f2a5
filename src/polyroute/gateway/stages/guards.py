"""Input and output guards: PII redaction and jailbreak detection around the model call.

On the way in (``check_input``, after parse and the rules, before the cache and the decision):
every text the request would send upstream is checked together, so one value gets one
placeholder across the system prompt and the turns; the jailbreak classifier reads the router's
own embedding of the routing text (one analysis, shared with the rules, the cache and the
decision). ``block`` ends the request (403, ``x-polyroute-ended-by: guard: …``); ``restrict``
leaves only the configured safe models as candidates; ``flag`` and a redaction are recorded.
What is recorded is the verdict — action, scores, span types and offsets — never the values.

On the way out (a hook on ``ctx.after``, so it sees the answer last, after the cache kept the
placeholder version): a complete answer gets the request's own values put back where it repeats
a placeholder, and with ``check_answers`` PII the model wrote is redacted. A relayed stream is
passed through as it is (its placeholders are not restored; say so in the docs).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.features import chat_to_text
from polyroute.gateway.errors import APIError
from polyroute.gateway.stages.rules import restrict_candidates

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext
    from polyroute.guards.stage import RequestOutcome


def _texts(body: dict[str, Any]) -> list[tuple[int, int | None, str]]:
    """(message index, content-part index or None, text) of every text the request sends."""
    out: list[tuple[int, int | None, str]] = []
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content")
        if isinstance(content, str):
            out.append((i, None, content))
        elif isinstance(content, list):
            out += [(i, j, p["text"]) for j, p in enumerate(content)
                    if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return out


def _with_texts(body: dict[str, Any], where: list[tuple[int, int | None, str]],
                texts: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``body`` whose texts at ``where`` are ``texts`` (the client's body is left)."""
    messages = [dict(m) for m in body["messages"]]
    for (i, j, _), text in zip(where, texts, strict=True):
        if j is None:
            messages[i]["content"] = text
        else:
            parts = [dict(p) for p in messages[i]["content"]]
            parts[j]["text"] = text
            messages[i]["content"] = parts
    return {**body, "messages": messages}


async def check_input(ctx: RequestContext) -> None:
    gw, rec, chat = ctx.gw, ctx.rec, ctx.chat
    guards = gw.guards
    assert guards is not None and chat is not None
    where = _texts(chat.body)
    embedding = None
    if guards.jailbreak is not None:
        if ctx.analysis is None:
            ctx.analysis = await gw.decider.analyse(chat.text)
        embedding = ctx.analysis.embedding
    outcome = guards.check_request([t for _, _, t in where], chat.text, embedding)
    rec.guard = outcome.record()
    if outcome.action != "allow":
        rec.extra_headers["x-polyroute-guard"] = outcome.action
        gw.metrics.guard_actions.labels(outcome.action).inc()
    if outcome.action == "block":
        rec.ended_by = f"guard: {outcome.verdict.reason}"
        raise APIError(403, f"the request was blocked by the gateway's guards "
                            f"({outcome.verdict.reason})", code="blocked_by_guard")
    if outcome.action == "restrict":
        restrict_candidates(ctx, outcome.safe_models, "the jailbreak guard")
    if outcome.texts != tuple(t for _, _, t in where):  # redacted: send (and keep) that
        body = _with_texts(chat.body, where, outcome.texts)
        ctx.chat = dataclasses.replace(chat, body=body, text=chat_to_text(body["messages"]))
        rec.text = ctx.chat.text
    if outcome.placeholders or guards.config.pii.check_answers:
        ctx.after.append(("output_guards", _answer_hook(ctx, outcome)))


def _answer_hook(ctx: RequestContext, outcome: RequestOutcome):
    guards = ctx.gw.guards
    assert guards is not None

    async def hook(response: Response) -> Response:
        body = getattr(response, "body", None)
        if response.status_code != 200 or not body or \
                response.media_type != "application/json":
            return response  # errors, and streams (relayed or replayed), pass as they are
        try:
            completion = json.loads(body)
        except ValueError:
            return response
        for choice in completion.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                message["content"] = guards.check_answer(message["content"], outcome).text
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        return Response(json.dumps(completion, ensure_ascii=False).encode(), status_code=200,
                        media_type="application/json", headers=headers)

    return hook

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
restored event by event (:class:`StreamedAnswerRestorer`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import Response

from polyroute.features import chat_to_text
from polyroute.gateway.errors import APIError
from polyroute.gateway.stages.rules import restrict_candidates
from polyroute.gateway.streaming import RelayResponse
from polyroute.guards.stage import StreamRestorer

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
    if guards.jailbreak is not None and gw.guard_featurizer is not None:
        # The router's embedding is in another space: the classifier's own encoder, off the
        # event loop.
        text = chat.text
        embedding = (await anyio.to_thread.run_sync(
            lambda: gw.guard_featurizer.encode([text])))[0]
    elif guards.jailbreak is not None:
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
        if isinstance(response, RelayResponse):  # restored event by event as it streams
            if guards.config.pii.restore_in_answer and outcome.placeholders:
                response.filters.append(StreamedAnswerRestorer(guards.stream_restorer(outcome)))
            return response
        body = getattr(response, "body", None)
        if response.status_code != 200 or not body or \
                response.media_type != "application/json":
            return response  # errors, and buffered SSE replays (multi-call), pass as they are
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


class StreamedAnswerRestorer:
    """Puts a request's values back into a relayed stream's content deltas, event by event.

    Placeholders split across deltas (``<EMA`` + ``IL_1>``) are held back by the
    :class:`~polyroute.guards.stage.StreamRestorer` until completed; what is held when a choice
    finishes (or at ``[DONE]``) goes out in that event. Bytes of an event not yet complete wait
    for the rest (the relay forwards whole events, but the first batch may end mid-event).
    """

    def __init__(self, restorer: StreamRestorer) -> None:
        self.restorer = restorer
        self._pending = b""

    def __call__(self, data: bytes) -> bytes:
        data = self._pending + data
        ends = [i + len(sep) for sep in (b"\n\n", b"\r\n\r\n")
                if (i := data.rfind(sep)) != -1]
        cut = max(ends, default=0)
        data, self._pending = data[:cut], data[cut:]
        out = []
        for event in data.replace(b"\r\n", b"\n").split(b"\n\n"):
            if event.strip():
                out.append(self._event(event) + b"\n\n")
        return b"".join(out)

    def _event(self, event: bytes) -> bytes:
        lines = event.split(b"\n")
        payload = b"\n".join(line[5:].lstrip() for line in lines if line.startswith(b"data:"))
        if payload.strip() == b"[DONE]":
            held = self.restorer.flush()
            return (self._content_event(held) + b"\n\n" if held else b"") + event
        try:
            obj = json.loads(payload)
        except ValueError:
            return event
        choices = obj.get("choices") if isinstance(obj, dict) else None
        if not isinstance(choices, list):
            return event
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            text = delta.get("content")
            restored = self.restorer.feed(text) if isinstance(text, str) else ""
            if choice.get("finish_reason") is not None:
                restored += self.restorer.flush()
            if isinstance(text, str) or restored:
                delta["content"] = restored
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode()

    @staticmethod
    def _content_event(text: str) -> bytes:
        chunk = {"object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        return b"data: " + json.dumps(chunk, ensure_ascii=False).encode()

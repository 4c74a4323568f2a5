"""Reserve: a limited key holds an upper bound of the request's cost while it is in flight.

Keys without a limit skip this stage's work entirely. The bound, the cap sent upstream when the
client sets none, and why the limit then holds are in ``spend.py``; which backends may answer and
how many calls the request may make come from its serving strategy.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from polyroute.config import KeyConfig
from polyroute.gateway.body import ChatRequest
from polyroute.gateway.errors import APIError
from polyroute.gateway.serving import strategy_for
from polyroute.signals.text import context_chars

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext
    from polyroute.gateway.recorder import Recorder


async def run(ctx: RequestContext) -> None:
    if ctx.gw.spend.limits(ctx.key):  # most keys have no limit: no estimate on their path
        assert ctx.chat is not None
        ctx.chat = await _reserve(ctx, ctx.key, ctx.chat, ctx.rec)


async def _reserve(ctx: RequestContext, key: KeyConfig | None, chat: ChatRequest,
             rec: Recorder) -> ChatRequest:
    """Hold a limited key's reservation (on ``rec``) and bound its answers; the request to send.

    With the client's ``max_tokens`` / ``max_completion_tokens`` the reservation prices that cap.
    Without one, the gateway caps each answer at what the key's remainder can pay for, at most
    the learnt ceiling of the models that may answer (the largest: one cap goes to whichever
    answers), and sends the cap upstream — in ``max_completion_tokens`` if the body has that
    field, else ``max_tokens``. The argument that this keeps the limit is in ``spend.py``.
    """
    gw = ctx.gw
    strategy = strategy_for(ctx.serving)
    tokens_in, choices = prompt_tokens(chat.body), _choices(chat.body)

    def cost(tokens: int) -> float:
        return _reservation(ctx, tokens_in, tokens * choices)

    given = _max_tokens(chat.body)
    if given is not None:
        rec.reservation, rec.output_cap = await gw.spend.reserve(key, cost(given)), given * choices
        return chat
    answering = {n for n in strategy.answering(ctx) if n in gw.backends}
    ceiling = max((gw.ceilings.ceiling(m) for m in answering),
                  default=gw.config.ceilings.default_tokens)
    rec.reservation, cap = await gw.spend.reserve_answer(key, cost, ceiling)
    if cap is None:
        return chat
    rec.output_cap = cap * choices
    field = "max_completion_tokens" if "max_completion_tokens" in chat.body else "max_tokens"
    return dataclasses.replace(chat, body={**chat.body, field: cap})


def _max_tokens(body: dict[str, Any]) -> int | None:
    """The client's cap on each answer (the larger of ``max_completion_tokens`` and
    ``max_tokens`` if both are given: either may be the one the backend honours); None if
    neither is; 400 for a value that is not a positive integer (it could bound nothing)."""
    caps = []
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise APIError(400, f"'{field}' must be a positive integer, got {value!r}",
                           param=field)
        caps.append(value)
    return max(caps) if caps else None


def _choices(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def prompt_tokens(body: dict[str, Any]) -> int:
    """A call's prompt tokens as the cost model counts them (characters / 4), over the text of
    every message and any tool definitions — not only the routing text, which leaves out the
    system prompt and earlier turns. (Image parts are not counted.)"""
    return math.ceil(context_chars(body) / 4)


def _reservation(ctx: RequestContext, tokens_in: int, tokens_out: int) -> float:
    """Upper bound of a request's cost with ``tokens_in`` prompt and at most ``tokens_out``
    completion tokens per call, reserved against its key's spend limit.

    One call's bound is the most expensive candidate's: per candidate the larger of the router's
    predicted cost (what the request is charged if no usage comes back) and the backend's list
    prices × (prompt tokens, ``tokens_out``) — the most expensive because a fallback may answer
    instead of the first choice, whatever the ranking (the first choice failing is exactly when
    a fallback answers, and under load that is not rare). The serving strategy multiplies it by
    the calls it may make (a cascade's chain, a set's members and merge). A handful of
    multiplications over at most the backends.
    """
    gw = ctx.gw

    def bound(name: str, extra_in: int = 0) -> float:
        cfg = gw.backends[name].config
        return ((tokens_in + extra_in) * cfg.input_price_per_mtok
                + tokens_out * cfg.output_price_per_mtok) / 1e6

    one = max((max(bound(c.model), c.estimated_cost or 0.0) for c in ctx.rec.candidates
               if c.model in gw.backends), default=0.0)
    return strategy_for(ctx.serving).reservation(ctx, one, bound, tokens_out)

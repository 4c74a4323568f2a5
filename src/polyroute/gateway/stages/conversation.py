"""Conversation: session pinning, in two halves around the decision (``polyroute/conversations``).

``lookup`` (before decide) names the request's conversation and finds its pin. Then:

* no pin (a first turn, a new or expired conversation), a pin on a model the request may not use
  now, or a pinned model that is unavailable (breaker not closed, no free slot): the request is
  routed as usual, and whatever answers becomes the pin;
* a tool-result turn or an assistant continuation on a healthy pin: served there, never moved —
  the candidates are settled (the pinned model, then the last decision's other candidates as
  fallbacks) and the router's encoder is not run;
* a new user turn on a healthy pin: if no move could pay for the cache loss whatever the router
  says (:func:`~polyroute.conversations.cannot_pay`, from the turn's predicted costs alone) it is
  settled on the pin the same way; else the router ranks it and ``weigh_move`` (after decide)
  keeps it on the pin unless a move's estimated gain beats the priced cache loss
  (:func:`~polyroute.conversations.weigh`).

A request that ends ``ok`` (a stream: once it completed) keeps its pin under the conversation's
key, on the model that answered, until ``conversations.idle_s`` without a turn. Multi-call
profiles (cascade, top-k) call several models per turn and are not pinned.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.config import BackendConfig, ConversationsConfig
from polyroute.conversations import (
    CacheLossModel,
    CachePrices,
    ConversationIdError,
    PinStore,
    cannot_pay,
    identify,
    weigh,
)
from polyroute.conversations.pins import clock
from polyroute.gateway.errors import APIError
from polyroute.gateway.stages.decide import choose_policy
from polyroute.gateway.streaming import RelayResponse, StreamResult
from polyroute.store import OK, Candidate, ConversationPin

if TYPE_CHECKING:
    from polyroute.gateway.context import RequestContext

PINNED_HEADER = "x-polyroute-pinned"
CONVERSATION_ID_HEADER = "x-polyroute-conversation"


class Pinning:
    """What the stage needs beyond the request: the config, the cache-loss model, the backends'
    cache prices and the pin store (set at start: the gateway's store unless another was given)."""

    def __init__(self, config: ConversationsConfig, backends: tuple[BackendConfig, ...]) -> None:
        self.config = config
        self.cache = CacheLossModel.from_config(config)
        self.prices = {b.name: CachePrices.of(b) for b in backends}
        self.pins: PinStore | None = None
        #: Pin writes started from a stream's end (a sync callback), kept until they finish.
        self._writes: set[asyncio.Task[None]] = set()

    def store(self) -> PinStore:
        assert self.pins is not None, "the gateway sets the pin store at start"
        return self.pins

    def later(self, pin: ConversationPin) -> None:
        task = asyncio.get_running_loop().create_task(self.store().put(pin))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)


def _pinning(ctx: RequestContext) -> Pinning:
    pinning = ctx.gw.conversations
    assert pinning is not None, "the conversation stages run only when conversations are on"
    return pinning


def lam_of(ctx: RequestContext, fallback: float) -> float:
    """The λ that turns quality into dollars for this request: its policy's (every trade-off,
    balanced, cascade and top-k policy has one), else ``conversations.lam``."""
    lam = getattr(ctx.policy, "lam", None)
    return float(lam) if isinstance(lam, (int, float)) else fallback


async def lookup(ctx: RequestContext) -> None:
    gw, rec, chat, route = ctx.gw, ctx.rec, ctx.chat, ctx.route
    assert chat is not None and route is not None
    pinning = _pinning(ctx)
    if ctx.conversation is None:
        try:
            ctx.conversation = identify(chat.body, ctx.request.headers, key_id=rec.key_id,
                                        id_from=pinning.config.id_from)
        except ConversationIdError as exc:
            raise APIError(400, str(exc), param=exc.param) from None
    conv = ctx.conversation
    rec.conversation_id = conv.id
    detail: dict[str, Any] = {"source": conv.source, "turn": conv.turn, "key": conv.key,
                              "prefix_tokens": conv.prefix_tokens}
    rec.conversation = detail
    rec.extra_headers[CONVERSATION_ID_HEADER] = conv.id
    rec.extra_headers[PINNED_HEADER] = "no"
    if route.profile is not None:
        choose_policy(ctx)
        if ctx.plan is not None and ctx.plan.multi_call:
            detail["reason"] = f"a {ctx.plan.mode} profile calls several models: not pinned"
            return
    ctx.after.append(("conversation_pin", lambda response: _keep(ctx, response)))
    if route.profile is None:
        detail["reason"] = "a backend named directly: not routed"
        return
    pin = None if conv.lookup is None else await pinning.store().get(conv.lookup, clock())
    if pin is None:
        _routed(ctx, "first turn: routed" if conv.lookup is None else
                "no live pin (a new or idle conversation): routed")
        return
    ctx.pin = pin
    detail["pinned_model"] = pin.model
    allowed = [m for m in gw.decider.models if route.allowed is None or m in route.allowed]
    if pin.model not in allowed:
        _routed(ctx, f"pinned {pin.model} is not a candidate of this request: routed")
        return
    unavailable = gw.backends[pin.model].available
    if unavailable is not None:
        _routed(ctx, f"pinned {pin.model} is unavailable ({unavailable}): routed")
        return
    if not conv.new_question:
        _settle(ctx, pin, allowed, f"{conv.turn} turn: stays on {pin.model}")
        return
    lam = lam_of(ctx, pinning.config.lam)
    if cannot_pay(pin.model, allowed, gw.decider.predicted_costs(chat.text), lam=lam,
                  cost_scale=gw.decider.cost_scale, prefix_tokens=conv.prefix_tokens,
                  prices=pinning.prices, cache=pinning.cache,
                  min_gain=pinning.config.min_gain):
        _settle(ctx, pin, allowed, f"kept {pin.model}: no move could pay for the cache loss "
                                   f"(not embedded)")
        return
    ctx.weigh_pin = True  # once the router has ranked the turn


def _routed(ctx: RequestContext, reason: str) -> None:
    assert ctx.rec.conversation is not None
    ctx.rec.conversation["reason"] = reason
    ctx.gw.metrics.conversation_turns.labels("routed").inc()


def _settle(ctx: RequestContext, pin: ConversationPin, allowed: list[str], reason: str) -> None:
    """Serve the turn on ``pin.model``, falling back in the pinned decision's order."""
    fallbacks = [m for m in pin.fallbacks if m in allowed and m != pin.model]
    rest = [m for m in allowed if m != pin.model and m not in fallbacks]
    ctx.settled = tuple(Candidate(m) for m in (pin.model, *fallbacks, *rest))
    _pinned(ctx, pin.model, reason)


def _pinned(ctx: RequestContext, model: str, reason: str) -> None:
    rec = ctx.rec
    ctx.gw.metrics.conversation_turns.labels("kept").inc()
    rec.pinned_model = model
    assert rec.conversation is not None
    rec.conversation["reason"] = reason
    rec.extra_headers[PINNED_HEADER] = "yes"


async def weigh_move(ctx: RequestContext) -> None:
    pin, rec, gw = ctx.pin, ctx.rec, ctx.gw
    if not ctx.weigh_pin or pin is None or ctx.conversation is None or ctx.decision is None:
        return
    pinning = _pinning(ctx)
    analysis = ctx.decision.analysis
    verdict = weigh(pin.model, rec.candidates, lam=lam_of(ctx, pinning.config.lam),
                    cost_scale=analysis.estimates.cost_scale if analysis is not None
                    else gw.decider.cost_scale,
                    prefix_tokens=ctx.conversation.prefix_tokens, prices=pinning.prices,
                    cache=pinning.cache, min_gain=pinning.config.min_gain)
    first = [c for c in rec.candidates if c.model == verdict.model]
    rec.candidates = (*first, *(c for c in rec.candidates if c.model != verdict.model))
    assert rec.conversation is not None
    rec.conversation.update(verdict.detail())
    if verdict.moved:
        gw.metrics.conversation_turns.labels("moved").inc()
    else:
        _pinned(ctx, pin.model, verdict.reason)


async def _keep(ctx: RequestContext, response: Response) -> Response:
    """Keep the pin once the request ended ``ok`` (a relayed stream: when it completed)."""
    if isinstance(response, RelayResponse):
        def ended(result: StreamResult) -> None:
            if result.completed and result.error is None:
                pin = _new_pin(ctx)
                if pin is not None:
                    _pinning(ctx).later(pin)

        response.ended.append(ended)
        return response
    pin = _new_pin(ctx)
    if pin is not None:
        await _pinning(ctx).store().put(pin)
    return response


def _new_pin(ctx: RequestContext) -> ConversationPin | None:
    rec, conv = ctx.rec, ctx.conversation
    if conv is None or rec.status != OK or rec.chosen is None or not rec.answered:
        return None
    old = ctx.pin
    now = clock()
    chosen = [c for c in rec.candidates if c.model == rec.chosen]
    cost = chosen[0].estimated_cost if chosen else None
    if cost is None and old is not None and old.model == rec.chosen:
        cost = old.estimated_cost
    return ConversationPin(
        key=conv.key, conversation_id=conv.id, model=rec.chosen, key_id=rec.key_id,
        profile=rec.profile, turns=(old.turns if old is not None else 0) + 1,
        prefix_tokens=conv.prefix_tokens,
        fallbacks=tuple(c.model for c in rec.candidates if c.model != rec.chosen),
        estimated_cost=cost, created_ts=old.created_ts if old is not None else now, last_ts=now,
        expires_ts=now + _pinning(ctx).config.idle_s)

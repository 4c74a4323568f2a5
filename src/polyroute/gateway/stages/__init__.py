"""The request pipeline's stages, in order; each is one small module with one job.

    authenticate (in the endpoint, before a record exists) → admit → parse [→ ratelimit]
    [→ signals → rules] [→ input guards] [→ cache lookup] [→ conversation] → decide
    [→ conversation weigh] [→ shadow] → reserve → serve (the strategy of the request's call shape)

:data:`PIPELINE` is what every request passes; :func:`pipeline_for` slots in, by name, the
stages a config turns on (the bracketed ones: when a key has ``rpm``/``tpm``; when it has decision
rules or named routes).

Each stage is ``async def run(ctx) -> Response | None``: None hands the request on; a response
ends it there (the stage sets ``ctx.rec.ended_by`` to say why, which the headers and the record
carry). A stage that refuses the request raises :class:`~polyroute.gateway.errors.APIError`
(recorded with its status). Stages still to come slot in by name: signals and input guards after
parse, a cache lookup before decide, output guards and the cache store after serve.

A stage may also register a hook on ``ctx.after`` to see (and possibly replace) the response
that ends the request, whichever stage gave it: the cache lookup registers the cache store there
on a miss. Optional features add their stages only when configured (:func:`pipeline_for`), so a
gateway without them runs exactly :data:`PIPELINE`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.responses import Response

from polyroute.config import GatewayConfig
from polyroute.gateway.stages import (
    admit,
    cache,
    conversation,
    decide,
    guards,
    parse,
    ratelimit,
    reserve,
    rules,
    serve,
    shadow,
    signals,
)

if TYPE_CHECKING:
    from polyroute.config import GatewayConfig
    from polyroute.gateway.context import RequestContext

Stage = Callable[["RequestContext"], Awaitable[Response | None]]

#: (name, stage) in the order every request passes them.
PIPELINE: tuple[tuple[str, Stage], ...] = (
    ("admit", admit.run),
    ("parse", parse.run),
    ("decide", decide.run),
    ("reserve", reserve.run),
    ("serve", serve.run),
)


def pipeline_for(config: GatewayConfig) -> tuple[tuple[str, Stage], ...]:
    """:data:`PIPELINE` with the stages ``config`` turns on, each slotted in where it belongs: the
    rate limit right after ``parse`` when a key has ``rpm``/``tpm``, the
    signals and rules after ``parse`` when there are rules or named routes, then the input
    guards when a guard is enabled, then the cache lookup when the cache is enabled, all before
    ``decide``; with conversations on, the pin lookup just before ``decide`` and the weighing of
    a move just after it; then the shadow stage when a profile or key is in shadow mode. A
    gateway with none of these runs exactly :data:`PIPELINE`."""
    stages = list(PIPELINE)
    if any(k.rpm is not None or k.tpm is not None for k in config.keys):
        at = [name for name, _ in stages].index("parse") + 1
        stages.insert(at, ("ratelimit", ratelimit.run))
    if config.rules or config.routes:
        at = [name for name, _ in stages].index("parse") + 1
        stages[at:at] = [("signals", signals.run), ("rules", rules.run)]
    if guards_enabled(config):
        stages.insert([n for n, _ in stages].index("decide"), ("input_guards", guards.check_input))
    if config.cache.enabled:
        stages.insert([n for n, _ in stages].index("decide"), ("cache_lookup", cache.lookup))
    if config.conversations.enabled:
        at = [n for n, _ in stages].index("decide")
        stages[at:at + 1] = [("conversation", conversation.lookup), stages[at],
                             ("conversation_weigh", conversation.weigh_move)]
    if any(p.shadow is not None for p in config.profiles.values()) or \
            any(k.shadow is not None for k in config.keys):
        names = [n for n, _ in stages]
        after = "conversation_weigh" if "conversation_weigh" in names else "decide"
        stages.insert(names.index(after) + 1, ("shadow", shadow.run))
    return tuple(stages)


def guards_enabled(config: GatewayConfig) -> bool:
    """Whether ``config`` turns on any guard (and so the input-guards stage)."""
    guards = config.guards
    return guards.pii.enabled or guards.jailbreak.enabled or bool(guards.plugins)


async def run_pipeline(ctx: RequestContext,
                       stages: tuple[tuple[str, Stage], ...] = PIPELINE) -> Response:
    """Pass ``ctx`` through ``stages``; the first response ends the request, after the hooks
    the stages registered on ``ctx.after`` have seen it."""
    times = ctx.rec.stage_times  # None unless the gateway traces requests
    for name, stage in stages:
        if times is None:
            response = await stage(ctx)
        else:
            # Marked open first: the request may finish (and be traced) inside its stage.
            ctx.rec.open_stage = (name, time.time_ns())
            try:
                response = await stage(ctx)
            finally:
                times.append((name, ctx.rec.open_stage[1], time.time_ns()))
                ctx.rec.open_stage = None
        if response is not None:
            # Like unwinding middleware: the stage that ran first sees the response last (the
            # output guards restore values after the cache kept the placeholder version).
            for _hook_name, hook in reversed(ctx.after):
                response = await hook(response)
            return response
    raise RuntimeError("the pipeline's last stage must answer")

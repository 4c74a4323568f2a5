"""The request context: everything about one request, carried from stage to stage.

Why one object: the stages (``gateway/stages``) and the serving strategies (``gateway/serving``)
each do one job and hand the request on; what one stage learns (the parsed body, the route, the
decision) is what the next one needs, and the :class:`~polyroute.gateway.recorder.Recorder`
collects what the record will say. Nothing else is shared between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from polyroute.config import KeyConfig
from polyroute.conversations import Conversation
from polyroute.gateway.body import ChatRequest
from polyroute.gateway.recorder import Recorder
from polyroute.policies import Policy
from polyroute.policies.kinds import SINGLE, ProfilePlan
from polyroute.signals import SignalValues
from polyroute.store import Candidate, ConversationPin

if TYPE_CHECKING:
    from polyroute.gateway.apis.base import ClientAPI, Exchange
    from polyroute.gateway.routing import Analysis, Plan, RoutingResult
    from polyroute.gateway.service import Gateway, Route


@dataclass
class RequestContext:
    gw: Gateway
    request: Request
    key: KeyConfig | None
    rec: Recorder
    #: The wire format the client speaks (None: Chat Completions, the internal shape).
    api: ClientAPI | None = None
    chat: ChatRequest | None = None
    #: How this request's internal answer is said back in the client's shape (set by parse;
    #: None: the client speaks the internal shape).
    exchange: Exchange | None = None
    route: Route | None = None
    #: The profile's plan for this request (None: a backend named directly, or a per-request
    #: budget/floor that routes plainly).
    plan: ProfilePlan | None = None
    policy: Policy | None = None
    decision: RoutingResult | None = None
    #: The request's signal values (computed on first use), once the signals stage has run.
    signals: SignalValues | None = None
    #: The router's embedding and estimates of the routing text, when a signal, rule or named
    #: route needed them before the decision (which then ranks on them, not embedding again).
    analysis: Analysis | None = None
    #: The request's category (set by the domain signal; None: the default category).
    category: str | None = None
    #: The conversation the request belongs to (set by the conversation stage, or earlier by a
    #: client API that knows it: the Responses API's ``previous_response_id``).
    conversation: Conversation | None = None
    #: The conversation's live pin, if it has one; with ``weigh_pin`` (a new user turn on a
    #: healthy pin) the conversation stage's second half weighs moving off it once the router
    #: has ranked the turn.
    pin: ConversationPin | None = None
    weigh_pin: bool = False
    #: Candidates a stage before the decision settled on (a turn served on its pinned model):
    #: the decision then ranks nothing and the encoder is not run.
    settled: tuple[Candidate, ...] | None = None
    #: ``(name, hook)`` pairs a stage registered to see the response that ends the request,
    #: run in order by the pipeline (the cache stores a complete answer this way).
    after: list[tuple[str, Callable[[Response], Awaitable[Response]]]] = \
        field(default_factory=list)

    @property
    def serving(self) -> str:
        """The call shape that serves this request (a serving strategy's name)."""
        return self.plan.mode if self.plan is not None else SINGLE

    @property
    def multi(self) -> Plan:
        """The policy's per-prompt plan of a multi-call request (a chain, a set), else None."""
        if self.decision is None or self.plan is None or not self.plan.multi_call:
            return None
        return self.decision.plan

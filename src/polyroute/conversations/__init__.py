"""Conversations: which conversation a request belongs to, the model it is pinned to, and when
a new user turn should move (``identity``, ``pins``, ``reroute``). The gateway's stage is
``gateway/stages/conversation.py``."""

from polyroute.conversations.identity import (
    CONTINUATION,
    CONVERSATION_HEADER,
    FIRST,
    TOOL,
    USER,
    Conversation,
    ConversationIdError,
    for_id,
    identify,
    turn_kind,
)
from polyroute.conversations.pins import MemoryPins, PinStore, StorePins
from polyroute.conversations.reroute import (
    CacheLossModel,
    CachePrices,
    Verdict,
    cannot_pay,
    weigh,
)

__all__ = [
    "CONTINUATION",
    "CONVERSATION_HEADER",
    "CacheLossModel",
    "CachePrices",
    "Conversation",
    "ConversationIdError",
    "FIRST",
    "MemoryPins",
    "PinStore",
    "StorePins",
    "TOOL",
    "USER",
    "Verdict",
    "cannot_pay",
    "for_id",
    "identify",
    "turn_kind",
    "weigh",
]

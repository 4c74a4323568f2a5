"""Which conversation a chat request belongs to, and which turn of it this is.

An explicit id wins (a header, ``metadata.conversation_id``, the ``user`` field as configured, or
— set by the Responses API — the conversation a ``previous_response_id`` continues). Without one,
the conversation is named by a hash of its *client-authored* messages (system, developer and user
turns) up to the latest user turn. Why only those: assistant turns and tool calls are output the
client re-serialises (``content: null`` or ``""``, reordered keys, a dropped ``refusal``), so a
hash over them would miss; and turn n's assistant answer does not exist when turn n's pin is
written. So turn n writes its pin under the hash of the client's messages through its user turn,
and turn n+1 — whose messages before *its* latest user turn are exactly those, plus an
assistant answer the hash leaves out — looks it up by the same hash. A tool-result turn or an
assistant continuation has the same latest user turn as the request before it, so it finds the
same pin.

Every key is scoped by the client key id: two tenants never share a pin, even with the same
explicit id or the same system prompt.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polyroute.errors import PolyrouteError
from polyroute.signals.text import context_chars

#: The header that names a conversation explicitly.
CONVERSATION_HEADER = "x-polyroute-conversation"
#: Longest explicit id accepted (a longer one is refused: it would be stored with every request).
MAX_ID_CHARS = 256

#: Turn kinds. Only ``first`` and ``user`` turns carry a new question; ``tool`` (the answer of a
#: tool the model called) and ``continuation`` (an assistant message to continue) never re-route.
FIRST, USER, TOOL, CONTINUATION = "first", "user", "tool", "continuation"
#: Where the conversation's identity came from.
PREFIX = "prefix"

_CLIENT_ROLES = frozenset({"system", "developer", "user"})


class ConversationIdError(PolyrouteError, ValueError):
    """An explicit conversation id that cannot be used (not a string, empty, too long)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Conversation:
    """One request's place in its conversation."""

    #: What records and logs show: the explicit id as given, or ``prefix:<hash>``.
    id: str
    #: ``header``, ``metadata``, ``user``, ``previous_response`` or ``prefix``.
    source: str
    #: ``first``, ``user``, ``tool`` or ``continuation`` (see the module's constants).
    turn: str
    #: The pin key to look up; None for the first turn of a prefix-named conversation (whose
    #: prefix, the system prompt alone, is shared by every conversation that uses it).
    lookup: str | None
    #: The pin key this turn's answer is kept under (the next turn looks it up).
    key: str
    #: Prompt tokens (characters / 4) of the messages before the latest user turn: the part a
    #: warm prompt cache holds, which moving the conversation to another model re-reads cold.
    prefix_tokens: int

    @property
    def new_question(self) -> bool:
        """Whether this turn asks something new, so that it may move off its pin: a user turn
        (a ``first`` one has a pin only under an explicit id that already holds one)."""
        return self.turn in (FIRST, USER)


def turn_kind(messages: Sequence[Any]) -> str:
    """``first`` (a user turn with no assistant turn before it), ``user``, ``tool`` (the last
    message is a tool's or function's result) or ``continuation`` (anything else last: an
    assistant message to continue)."""
    chats = [m for m in messages if isinstance(m, Mapping)]
    if not chats:
        return FIRST
    last = chats[-1].get("role")
    if last in ("tool", "function"):
        return TOOL
    if last != "user":
        return CONTINUATION
    return USER if any(m.get("role") == "assistant" for m in chats) else FIRST


def identify(body: Mapping[str, Any], headers: Mapping[str, str], *, key_id: str | None,
             id_from: Sequence[str] = ("header", "metadata")) -> Conversation:
    """The conversation of a checked chat request (see the module's docstring).

    Raises :class:`ConversationIdError` for an explicit id that is not a non-empty string of at
    most :data:`MAX_ID_CHARS` characters.
    """
    messages = body.get("messages") or ()
    explicit = _explicit_id(body, headers, id_from)
    if explicit is not None:
        value, source = explicit
        return for_id(value, source, messages, key_id=key_id, tools=body.get("tools"))
    turn = turn_kind(messages)
    authored, last_user = _authored(messages)
    key = _digest(key_id, authored)
    lookup = None if turn == FIRST else \
        _digest(key_id, authored[:-1]) if turn == USER else key
    # The id shown is the same on every turn: the hash through the *first* user turn.
    first_user = next((i for i, (role, _) in enumerate(authored) if role == "user"),
                      len(authored) - 1)
    shown = _digest(key_id, authored[:first_user + 1])
    return Conversation(id=f"{PREFIX}:{shown[:16]}", source=PREFIX, turn=turn, lookup=lookup,
                        key=key, prefix_tokens=_prefix_tokens(messages, last_user, turn,
                                                      body.get("tools")))


def for_id(value: str, source: str, messages: Sequence[Any], *, key_id: str | None,
           tools: Any = None) -> Conversation:
    """The conversation an explicit id names (``source`` says where it came from: the Responses
    API passes ``previous_response`` with the conversation its previous response belongs to).
    Every turn of it looks up and keeps the same pin."""
    turn = turn_kind(messages)
    _, last_user = _authored(messages)
    key = hashlib.sha256(json.dumps([key_id, "id", value]).encode()).hexdigest()
    return Conversation(id=value, source=source, turn=turn, lookup=key, key=key,
                        prefix_tokens=_prefix_tokens(messages, last_user, turn, tools))


def _explicit_id(body: Mapping[str, Any], headers: Mapping[str, str],
                 id_from: Sequence[str]) -> tuple[str, str] | None:
    for source in id_from:
        if source == "header":
            value, param = headers.get(CONVERSATION_HEADER), CONVERSATION_HEADER
        elif source == "metadata":
            metadata = body.get("metadata")
            value = metadata.get("conversation_id") if isinstance(metadata, Mapping) else None
            param = "metadata.conversation_id"
        else:
            value, param = body.get("user"), "user"
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConversationIdError(f"{param} must be a non-empty string naming the "
                                      f"conversation, got {value!r}", param)
        if len(value) > MAX_ID_CHARS:
            raise ConversationIdError(f"{param} is {len(value)} characters long; a conversation "
                                      f"id may have at most {MAX_ID_CHARS}", param)
        return value, source
    return None


def _authored(messages: Sequence[Any]) -> tuple[list[tuple[str, str]], int | None]:
    """The client-authored messages up to and including the latest user turn, each as its role
    and canonical JSON, and the index of that user turn in ``messages`` (None if none)."""
    last_user = None
    for i, m in enumerate(messages):
        if isinstance(m, Mapping) and m.get("role") == "user":
            last_user = i
    end = len(messages) if last_user is None else last_user + 1
    authored = []
    for m in messages[:end]:
        if not isinstance(m, Mapping) or m.get("role") not in _CLIENT_ROLES:
            continue
        role = "system" if m.get("role") == "developer" else m.get("role")
        authored.append((role, json.dumps({"role": role, "content": m.get("content"),
                                           "name": m.get("name")}, sort_keys=True,
                                          ensure_ascii=False, separators=(",", ":"))))
    return authored, last_user


def _digest(key_id: str | None, authored: Sequence[tuple[str, str]]) -> str:
    h = hashlib.sha256(json.dumps([key_id, "prefix"]).encode())
    for _, item in authored:
        # Length-prefixed, so no two different message lists hash the same bytes.
        h.update(f"{len(item)}:".encode())
        h.update(item.encode())
    return h.hexdigest()


def _prefix_tokens(messages: Sequence[Any], last_user: int | None, turn: str,
                   tools: Any) -> int:
    """Characters / 4 of what a warm cache holds: the tool definitions and the messages before
    the latest user turn (a tool turn or continuation: all but the last message)."""
    end = last_user if turn in (USER, FIRST) and last_user is not None else len(messages) - 1
    return math.ceil(context_chars({"messages": list(messages[:max(end, 0)]),
                                    "tools": tools}) / 4)

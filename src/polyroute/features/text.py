"""What to embed: the part of a request that says what is being asked.

The sentence encoder truncates at 256 word pieces (~1,000 characters), so a long shared prefix
(a few-shot block, a system prompt, a reading passage) would push the actual question out of view.
We keep the head (the instruction) and, above all, the tail (the question).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Characters kept from a long text; about the encoder's 256-token window.
DEFAULT_MAX_CHARS = 1000
_HEAD_SHARE = 0.25


_SURROGATES = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with lone surrogates (which JSON can carry but UTF-8 cannot) replaced by U+FFFD:
    tokenizers and hashes need real characters, and one such code point must not crash them."""
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def focus_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Shorten ``text`` to at most ~``max_chars``, keeping a short head and a long tail."""
    text = " ".join(encodable(text).split())
    if len(text) <= max_chars:
        return text
    head = int(max_chars * _HEAD_SHARE)
    tail = max_chars - head
    return f"{text[:head]} … {text[-tail:]}"


#: Characters of earlier user turns the routing text may hold besides the latest turn: the
#: featurizer's head share of the window (``benchmarks/results/routing_window.md``).
DEFAULT_CONTEXT_CHARS = int(DEFAULT_MAX_CHARS * _HEAD_SHARE)


def chat_to_text(messages: Sequence[Any], max_chars: int = DEFAULT_MAX_CHARS,
                 max_user_turns: int | None = None,
                 context_chars: int = DEFAULT_CONTEXT_CHARS) -> str:
    """The text to route a chat by: the latest user turn whole, after the end of the user turns
    before it — at most ``context_chars`` characters of them, and no more than leaves the
    latest turn within the encoder's window of ``max_chars`` (at most ``max_user_turns`` turns
    in all, if given); never the system prompt, assistant or tool turns.

    Why: the latest user turn is what the request asks; an earlier turn helps when the latest
    is a follow-up ("and in French?") but must not outweigh it (an unrelated earlier question
    moves the routing as much as the new one), and a system prompt or a few-shot block shared
    by many requests would make them all look alike — measured in
    ``benchmarks/results/routing_window.md``. A latest turn longer than the window is kept
    whole here; the featurizer keeps its head and tail (:func:`focus_text`).

    ``content`` may be a string or OpenAI's list of parts; only text parts count. Any other
    shape (a message that is not an object, a ``text`` that is not a string) contributes
    nothing rather than raising: the gateway validates a request before it gets here, but this
    is a public function and a shape it was not told about is no reason to fail a request.
    """
    chats = [m for m in messages if isinstance(m, Mapping)]
    user_texts = [_content_text(m["content"]) for m in chats if m.get("role") == "user"
                  and isinstance(m.get("content"), (str, list))]
    if not user_texts:  # fall back to whatever text there is
        user_texts = [m["content"] for m in chats if isinstance(m.get("content"), str)]
        if not user_texts:
            return ""
    latest = user_texts[-1]
    earlier = user_texts[:-1] if max_user_turns is None else \
        user_texts[:-1][max(0, len(user_texts) - max(1, max_user_turns)):]
    room = min(context_chars, max_chars - _chars(latest) - 1)
    context = " ".join(" ".join(earlier).split())
    if room < _MIN_CONTEXT_CHARS or not context:
        return latest
    # The end of the earlier turns: the part nearest the latest one (a question's own wording
    # comes last in most prompts, after any passage or examples).
    return f"{context[-room:]}\n{latest}"


_MIN_CONTEXT_CHARS = 40


def _chars(text: str) -> int:
    """Characters of ``text`` as the featurizer counts them (runs of whitespace as one)."""
    return len(" ".join(text.split()))


def _content_text(content: str | list[Any]) -> str:
    """A message's text: the string itself, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if isinstance(p, Mapping)
                     and p.get("type") == "text" and isinstance(p.get("text"), str))

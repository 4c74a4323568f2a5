"""Cheap facts about a chat body: its length in tokens, its language, its parts.

Token counts use the cost model's rule (``ceil(chars / 4)``, :func:`polyroute.data.outcomes.
input_tokens`), so a rule on length and a spend reservation count the same tokens.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

#: Characters of text the language guess looks at: enough to tell, and a bound on its cost.
LANGUAGE_SAMPLE = 2000

_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ja", re.compile("[\u3040-\u30ff]")),  # kana: Japanese even among Han characters
    ("ko", re.compile("[\uac00-\ud7af\u1100-\u11ff]")),
    ("zh", re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("ru", re.compile("[\u0400-\u04ff]")),
    ("ar", re.compile("[\u0600-\u06ff]")),
    ("hi", re.compile("[\u0900-\u097f]")),
    ("el", re.compile("[\u0370-\u03ff]")),
    ("he", re.compile("[\u0590-\u05ff]")),
    ("th", re.compile("[\u0e00-\u0e7f]")),
)
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
#: Frequent short words that tell the Latin-script languages apart.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and is are of to in that it for with what how this you be on was "
                    "can does write an".split()),
    "fr": frozenset("le la les et est des une un du que qui pour dans pas sur ce avec vous "
                    "je au".split()),
    "de": frozenset("der die das und ist nicht ein eine zu den mit von für ich sie auf wie "
                    "dem was".split()),
    "es": frozenset("el los las y es en que del una por con para un se como qué está "
                    "su".split()),
    "it": frozenset("il di che è e la per una non sono gli del della con come cosa un "
                    "le".split()),
    "pt": frozenset("o os as e é um uma de que do da não em para com como você está".split()),
    "nl": frozenset("de het een en is van dat niet op te zijn met voor wat hoe je ik".split()),
}


#: Each frequent word → the languages it is frequent in (one pass over the words, not seven).
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _code, _words in _STOPWORDS.items():
    for _w in _words:
        _LANGUAGES_OF[_w] = (*_LANGUAGES_OF.get(_w, ()), _code)


def language(text: str) -> str | None:
    """A guess at the text's language (ISO 639-1 code), or None if there is nothing to go by.

    Non-Latin scripts decide by themselves (more than a third of the letters); Latin-script text
    by which language's frequent words occur most. A heuristic, not a classifier: good enough to
    route "answers in Japanese" or "German prompts" apart, and a few microseconds.
    """
    sample = text[:LANGUAGE_SAMPLE]
    if not sample.isascii():  # most prompts are ASCII: no other script to look for
        letters = len(_LETTERS.findall(sample))
        for code, pattern in _SCRIPTS:
            if len(pattern.findall(sample)) * 3 > letters:
                return code
    hits = dict.fromkeys(_STOPWORDS, 0)
    words = _WORDS.findall(sample.lower())
    if not words:
        return None
    for w in words:
        for code in _LANGUAGES_OF.get(w, ()):
            hits[code] += 1
    best = max(hits, key=hits.__getitem__)  # ties: the first listed (English)
    return best if hits[best] else None


def context_chars(body: Mapping[str, Any]) -> int:
    """Characters of every message's text and of any tool definitions or calls (image parts do
    not count): what the whole prompt sends, not only the routing text."""
    chars = 0
    for message in body.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p["text"]) for p in content
                         if isinstance(p, Mapping) and isinstance(p.get("text"), str))
        for extra in ("tool_calls", "function_call"):
            if message.get(extra):
                chars += len(json.dumps(message[extra]))
    for extra in ("tools", "functions"):
        if body.get(extra):
            chars += len(json.dumps(body[extra]))
    return chars


def context_tokens(body: Mapping[str, Any]) -> int:
    """A call's prompt tokens as the cost model counts them (characters / 4) over
    :func:`context_chars`."""
    return math.ceil(context_chars(body) / 4)


_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})


def has_images(body: Mapping[str, Any]) -> bool:
    """Whether any message carries an image part."""
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(isinstance(p, Mapping) and p.get("type") in
                                             _IMAGE_PARTS for p in content):
            return True
    return False


def has_tools(body: Mapping[str, Any]) -> bool:
    """Whether the request offers tools (or the older ``functions``) to the model."""
    return bool(body.get("tools") or body.get("functions"))


def json_mode(body: Mapping[str, Any]) -> bool:
    """Whether the request asks for JSON output (``response_format`` json_object/json_schema)."""
    fmt = body.get("response_format")
    return isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema")

"""Reasoning effort as a routing dimension: one candidate per (model, effort level).

Why candidates: a reasoning model at ``high`` effort is, for routing, another model — dearer (it
writes more tokens), slower, often better on hard prompts. Naming each level ``model@level``
lets every router, policy and evaluation treat it like any other candidate, with no new axis in
their contracts. Outcome data may record the level (an ``effort`` column), which makes
``model@level`` a column of its own; a gateway backend may expose levels (``efforts:``), which
makes ``model@level`` a backend of its own that sends ``reasoning_effort: level`` upstream.
"""

from __future__ import annotations

#: Effort levels, in the order OpenAI's ``reasoning_effort`` knows them.
LEVELS = ("minimal", "low", "medium", "high")
SEP = "@"


def candidate_name(model: str, effort: str | None) -> str:
    """``model@effort`` (``model`` itself without an effort)."""
    return model if not effort else f"{model}{SEP}{effort}"


def split_candidate(name: str) -> tuple[str, str | None]:
    """(model, effort) of a candidate name; effort None when it names no known level."""
    model, sep, effort = name.rpartition(SEP)
    if sep and model and effort in LEVELS:
        return model, effort
    return name, None

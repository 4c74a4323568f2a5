"""Reading a complete chat completion: its text, its usage tokens, what it cost.

Shared by the gateway's own calls that are not a client's request (onboarding's calibration
answers, shadow mode's routed answer and its judge), which need the answer itself rather than
bytes to relay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from polyroute.config import BackendConfig
from polyroute.data.outcomes import input_tokens


def answer_text(content: bytes) -> str:
    """The first choice's message text ("" when the completion carries none)."""
    try:
        text = json.loads(content)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return text if isinstance(text, str) else ""


def usage_tokens(usage: Mapping | None) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens the backend reported; (None, None) unless both are ints."""
    if not usage:
        return None, None
    pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (pt, ct))
    return (pt, ct) if ok else (None, None)


def call_cost(backend: BackendConfig, usage: Mapping | None, sent: str, answer: str) -> float:
    """Dollars of one call: reported tokens × the backend's prices, else the list-price
    estimate of what was sent and received."""
    pt, ct = usage_tokens(usage)
    if pt is None or ct is None:
        pt, ct = input_tokens(sent), input_tokens(answer)
    return (pt * backend.input_price_per_mtok + ct * backend.output_price_per_mtok) / 1e6

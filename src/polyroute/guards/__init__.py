"""Guards: checks a request (or an answer) passes before it is served.

* :class:`PiiGuard` — PII and secrets, validated (Luhn, mod-97, …), redacted with stable
  placeholders that :func:`restore` puts back into the answer.
* :class:`JailbreakGuard` — jailbreak / prompt-injection score from a linear model on the
  router's own embedding, plus phrase rules.

Each is a :class:`Guard`: ``check(text, embedding) -> Verdict``. :class:`RequestGuards` is what
the gateway's guard stages call (a request's texts, the answer, streams). ``polyroute guard`` runs
the configured guards over a JSONL file; ``docs/guards.md`` describes config, data and numbers.
"""

from __future__ import annotations

from polyroute.guards.base import SEVERITY, Guard, Span, Verdict, combine
from polyroute.guards.config import GuardsConfig, JailbreakConfig, PiiConfig, load_guards_config
from polyroute.guards.jailbreak import JailbreakGuard, JailbreakModel, rule_hits
from polyroute.guards.pii import PII_TYPES, PiiGuard, Redactor, find_pii, restore
from polyroute.guards.runner import build_guards, run_guards
from polyroute.guards.stage import RequestGuards, RequestOutcome, StreamRestorer

__all__ = [
    "Guard",
    "GuardsConfig",
    "JailbreakConfig",
    "JailbreakGuard",
    "JailbreakModel",
    "PII_TYPES",
    "PiiConfig",
    "PiiGuard",
    "Redactor",
    "RequestGuards",
    "RequestOutcome",
    "SEVERITY",
    "Span",
    "StreamRestorer",
    "Verdict",
    "build_guards",
    "combine",
    "find_pii",
    "load_guards_config",
    "restore",
    "rule_hits",
    "run_guards",
]

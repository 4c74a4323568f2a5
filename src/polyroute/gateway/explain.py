"""Every decision explained: compact response headers, and the whole story in words.

The record keeps everything (policy and its knob, rule or route, every candidate's estimates,
each try and why it failed, borrowed estimates, shadow mode, effort, pinning); the headers carry
a compact summary a client can log, and :func:`in_words` tells one recorded request as a person
would want to read it (``polyroute logs --id``).
"""

from __future__ import annotations

from typing import Any

from polyroute.store import Attempt, Candidate, RequestSummary

#: Candidates summarised in ``x-polyroute-candidates``.
HEADER_CANDIDATES = 3

#: What each try outcome means, in words.
_OUTCOME_WORDS = {
    "ok": "answered",
    "passthrough": "refused the request as the client's error (relayed)",
    "timeout": "timed out",
    "connect_error": "could not be reached",
    "transport_error": "dropped the connection",
    "cooldown": "was skipped: its circuit breaker is open",
    "saturated": "was skipped: no free slot",
    "bad_response": "sent something that is not a chat completion",
    "too_large": "sent an answer larger than the limit",
    "stream_error": "broke off its stream after it had started",
}


def policy_summary(policy: str | None, preference: dict[str, Any] | None) -> str | None:
    """``tradeoff lam=0.5`` — the policy and the knob that was set."""
    if policy is None:
        return None
    pref = preference or {}
    set_knobs = {k: pref[k] for k in ("budget", "floor") if pref.get(k) is not None}
    if not set_knobs and pref.get("lam") is not None:  # λ speaks only when nothing else is set
        set_knobs = {"lam": pref["lam"]}
    knobs = [f"{k}={v:g}" if isinstance(v, int | float) else f"{k}={v}"
             for k, v in set_knobs.items()]
    return " ".join([policy, *knobs])


def candidates_summary(candidates: tuple[Candidate, ...]) -> str:
    """``alpha q=0.71 $0.00031, beta q=0.65 $0.00002`` (the first few)."""
    parts = []
    for c in candidates[:HEADER_CANDIDATES]:
        q = "-" if c.estimated_quality is None else f"{c.estimated_quality:.2f}"
        cost = "-" if c.estimated_cost is None else f"{c.estimated_cost:.2g}"
        parts.append(f"{c.model} q={q} ${cost}")
    return ", ".join(parts)


def tried_summary(attempts: tuple[Attempt, ...] | list[Attempt]) -> str:
    """``alpha=http_500, beta=ok``."""
    return ", ".join(f"{a.backend}={a.outcome}" for a in attempts)


def compact_headers(policy: str | None, preference: dict[str, Any] | None,
                    candidates: tuple[Candidate, ...], attempts: list[Attempt],
                    explain: dict[str, Any]) -> dict[str, str]:
    """The decision's headers (ASCII: backend and model names are checked names)."""
    h: dict[str, str] = {}
    summary = policy_summary(policy, preference)
    if summary:
        h["x-polyroute-policy"] = summary
    if candidates and policy is not None:
        h["x-polyroute-candidates"] = candidates_summary(candidates)
    if len(attempts) > 1 or any(a.outcome not in ("ok", "passthrough") for a in attempts):
        h["x-polyroute-tried"] = tried_summary(attempts)
    shadow = explain.get("shadow")
    if shadow:
        h["x-polyroute-shadow"] = f"served={shadow['served']} routed={shadow['routed']}"
    conversation = explain.get("conversation")
    if isinstance(conversation, dict) and "pinned" in conversation:
        h["x-polyroute-pinned"] = "yes" if conversation["pinned"] else "no"
    return h


def in_words(r: RequestSummary) -> list[str]:
    """One recorded request's decision, told in sentences."""
    ex = r.explain or {}
    lines: list[str] = []
    if r.profile is None:
        lines.append(f"The client named backend {r.requested_model!r} directly: no routing "
                     f"decision was made." if r.requested_model else
                     "The request was refused before a route was known.")
    else:
        pol = policy_summary(r.policy, r.preference)
        lines.append(f"The client asked for profile {r.profile!r}"
                     + (f"; it decides with policy {pol}." if pol else "."))
    if r.rule:
        lines.append(f"Decision rule {r.rule!r} applied.")
    if r.named_route:
        lines.append(f"The prompt matched named route {r.named_route!r}.")
    if ex.get("effort"):
        lines.append(f"Reasoning effort: {ex['effort']}.")
    conversation = ex.get("conversation")
    if isinstance(conversation, dict):
        lines.append(_conversation_words(conversation))
    if r.candidates and r.profile is not None:
        ranked = "; ".join(
            f"{c.model} (estimated quality "
            f"{'-' if c.estimated_quality is None else format(c.estimated_quality, '.3f')}, "
            f"cost ${'-' if c.estimated_cost is None else format(c.estimated_cost, '.6f')})"
            for c in r.candidates)
        lines.append(f"Candidates in the order tried: {ranked}.")
    notes = ex.get("estimates") or {}
    for c in r.candidates:
        if c.borrowed_from:
            note = notes.get(c.model) or f"estimated as {c.borrowed_from}"
            lines.append(f"{c.model} has no outcome data of its own: {note}.")
    shadow = ex.get("shadow")
    if shadow:
        lines.append(f"Shadow mode: {shadow['served']} served the request; the router would "
                     f"have chosen {shadow['routed']}"
                     + (" (this request was also sent to it and judged)."
                        if shadow.get("sampled") else "."))
    for a in r.attempts:
        words = _OUTCOME_WORDS.get(a.outcome) or (
            f"answered HTTP {a.http_status}" if a.outcome.startswith("http_") else a.outcome)
        timing = "" if a.latency_ms is None else f" after {a.latency_ms:.0f} ms"
        lines.append(f"Tried {a.backend}: {words}{timing}.")
    if r.status == "ok" and r.chosen:
        lines.append(f"Answered by {r.chosen} in {_ms(r.latency_ms)} for ${r.cost:.6f}"
                     + (f" ({r.fallbacks} fallback{'s' if r.fallbacks != 1 else ''})."
                        if r.fallbacks else "."))
    elif r.error:
        lines.append(f"Ended {r.status}: {r.error}.")
    return lines


def _conversation_words(c: dict[str, Any]) -> str:
    cid = c.get("id", "?")
    if c.get("pinned"):
        return f"Conversation {cid}: kept on its pinned model {c.get('model', '?')}" + \
            (f" ({c['reason']})." if c.get("reason") else ".")
    return f"Conversation {cid}: routed afresh" + \
        (f" ({c['reason']})." if c.get("reason") else ".")


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} ms"

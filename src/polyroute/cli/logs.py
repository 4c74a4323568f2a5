"""``polyroute logs``: recent gateway requests and spend per model, from the store; ``--id`` shows
one request whole (decision, estimates, attempts, costs, feedback)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import asdict
from pathlib import Path

from polyroute.errors import ConfigError, StoreError
from polyroute.store import ConversationPin, RequestSummary, Store, open_store


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", type=Path, metavar="FILE", help="gateway config (its store)")
    group.add_argument("--store", metavar="FILE|URL",
                       help="the store: a SQLite file or a postgresql:// URL")


def open_args_store(args: argparse.Namespace) -> Store:
    """The store named by ``--store`` or by the config's ``store``, read-only."""
    if args.store is not None:
        return open_store(args.store, readonly=True)
    from polyroute.config import load_config

    return open_store(load_config(args.config).store, readonly=True)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="show recent gateway requests and spend per model",
                       description="Read the gateway's store (safe while it runs) and show the "
                                   "latest requests and what each model cost.")
    add_store_arguments(p)
    p.add_argument("-n", "--limit", type=int, default=20, metavar="N",
                   help="requests to show (default: %(default)s)")
    p.add_argument("--days", type=float, metavar="D",
                   help="spend over the last D days only (default: all time)")
    p.add_argument("--id", metavar="REQUEST_ID",
                   help="show this one request whole: its decision, every model's estimates, "
                        "the backends tried, costs, feedback and prompt")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise ConfigError("--limit must be >= 0")
    if args.id is not None:
        return _show_one(args)
    store = open_args_store(args)
    try:
        requests = store.recent_requests(args.limit)
        since = time.time() - args.days * 86400 if args.days is not None else None
        spend = store.spend_by_model(since)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"requests": [asdict(r) for r in requests],
                          "spend": [asdict(s) for s in spend]}, indent=1))
        return 0
    _print_tables(requests, spend, args.days)
    return 0


def _show_one(args: argparse.Namespace) -> int:
    store = open_args_store(args)
    try:
        record = store.get_request(args.id)
        key = (record.conversation or {}).get("key") if record is not None else None
        pin = store.get_pin(key, time.time()) if isinstance(key, str) else None
    finally:
        store.close()
    if record is None:
        raise StoreError(f"{store.location}: no request with id {args.id!r}")
    if args.json:
        print(json.dumps({**asdict(record), "current_pin": None if pin is None else asdict(pin)},
                         indent=1))
    else:
        _print_record(record, pin)
    return 0


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _num(x: float | None, fmt: str, unit: str = "") -> str:
    return "-" if x is None else f"{x:{fmt}}{unit}"


def _print_record(r: RequestSummary, pin: ConversationPin | None = None) -> None:
    """One request as labelled sections: what was asked, how it was decided, what was tried,
    what it cost, what the client said of it."""
    from rich.table import Table
    from rich.text import Text

    from polyroute.cli._common import out
    from polyroute.gateway.explain import in_words

    def fields(title: str, rows: list[tuple[str, str]]) -> None:
        table = Table(title=title, title_justify="left", show_header=False, box=None,
                      padding=(0, 2, 0, 0))
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for name, value in rows:
            table.add_row(name, Text(value))  # Text: no markup in user data
        out.print(table)
        out.print()

    fields("Request", [
        ("request id", r.id), ("started (UTC)", _utc(r.ts)),
        ("finished (UTC)", _utc(r.finished_ts)),
        ("key", r.key_id or "-"), ("asked for", r.requested_model or "-"),
        ("profile", r.profile or "-"), ("stream", "yes" if r.stream else "no"),
        ("status", f"{r.status} {r.http_status or ''}".strip()), ("error", r.error or "-")])
    out.print(Text("Why this model", style="bold"))
    for line in in_words(r):
        out.print(Text("  " + line), soft_wrap=False)
    out.print()
    fields("Decision", [
        ("policy", r.policy or "-"),
        ("preference", "-" if r.preference is None else json.dumps(r.preference, sort_keys=True)),
        ("rule / route", _rule_and_route(r) or "-"),
        ("chosen", r.chosen or "-"), ("fallbacks", str(r.fallbacks)),
        ("decision time", _num(r.decision_ms, ".1f", " ms"))]
        + [(f"explain.{k}", json.dumps(v, sort_keys=True))
           for k, v in sorted((r.explain or {}).items())])

    if r.conversation_id is not None:
        fields("Conversation", _conversation_rows(r, pin))

    est = Table(title="Estimates (candidates in fallback order)", title_justify="left")
    for col, justify in [("rank", "right"), ("model", "left"), ("est. quality", "right"),
                         ("est. cost $", "right"), ("", "left")]:
        est.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for i, c in enumerate(r.candidates, 1):
        est.add_row(str(i), c.model, _num(c.estimated_quality, ".3f"),
                    _num(c.estimated_cost, ".6f"), "chosen" if c.model == r.chosen else "")
    out.print(est if r.candidates else Text("Estimates: none recorded (no routing decision)"))
    out.print()

    att = Table(title="Attempts (backends tried, in order)", title_justify="left")
    for col, justify in [("#", "right"), ("backend", "left"), ("outcome", "left"),
                         ("http", "right"), ("ms", "right"), ("error", "left")]:
        att.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for i, a in enumerate(r.attempts, 1):
        status = "" if a.http_status is None else str(a.http_status)
        att.add_row(str(i), a.backend, a.outcome, status,
                    _num(a.latency_ms, ".0f"), Text(a.error or ""))
    out.print(att if r.attempts else Text("Attempts: none (no backend was called)"))
    out.print()

    tokens = ("-" if r.prompt_tokens is None
              else f"{r.prompt_tokens} in / {r.completion_tokens} out")
    fields("Cost and time", [
        ("cost", f"${r.cost:.6f}"), ("cost source", r.cost_source or "-"), ("tokens", tokens),
        ("latency", _num(r.latency_ms, ".0f", " ms")),
        ("first byte", _num(r.ttfb_ms, ".0f", " ms"))])

    fb = Table(title="Feedback (oldest first; the latest counts)", title_justify="left")
    for col, justify in [("time (UTC)", "left"), ("key", "left"), ("score", "right"),
                         ("comment", "left")]:
        fb.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for f in r.feedbacks:
        fb.add_row(_utc(f.ts), f.key_id or "-", f"{f.score:.2f}", Text(f.comment or ""))
    out.print(fb if r.feedbacks else Text("Feedback: none"))
    out.print()

    out.print(Text("Prompt", style="bold"))
    out.print(Text(r.prompt if r.prompt is not None else "(not recorded)"))


def _conversation_rows(r: RequestSummary, pin: ConversationPin | None) -> list[tuple[str, str]]:
    """The conversation a request belonged to, whether it was served pinned and why, and the
    conversation's pin as it stands now."""
    c = r.conversation or {}
    rows = [("conversation", f"{r.conversation_id} ({c.get('source', '?')})"),
            ("turn", str(c.get("turn", "-"))),
            ("pinned", "yes" if r.pinned else "no"),
            ("pinned model", str(c.get("pinned_model") or "-")),
            ("why", str(c.get("reason", "-")))]
    if "gain" in c:
        usd = c.get("gain_usd")
        rows.append(("best move", f"{c.get('alternative')}: gain {c['gain']:+.3f}"
                                  + ("" if usd is None else f" (${usd:.6f})")
                                  + f" vs cache loss ${c.get('cache_loss_usd', 0.0):.6f}"))
    rows.append(("prefix tokens", str(c.get("prefix_tokens", "-"))))
    rows.append(("pin now", "none (expired or never kept)" if pin is None else
                 f"{pin.model} after {pin.turns} turn(s); last turn {_utc(pin.last_ts)}, "
                 f"expires {_utc(pin.expires_ts)}"))
    return rows


def _rule_and_route(r) -> str:
    """``rule <name>``, ``route <name>`` or both."""
    parts = ([f"rule {r.rule}"] if r.rule else []) + \
        ([f"route {r.named_route}"] if r.named_route else [])
    return ", ".join(parts)


def _print_tables(requests, spend, days: float | None) -> None:
    from rich.table import Table

    from polyroute.cli._common import out

    table = Table(title=f"latest {len(requests)} request(s)", title_justify="left")
    for col, justify in [("time (UTC)", "left"), ("request id", "left"), ("key", "left"),
                         ("asked", "left"), ("model", "left"), ("status", "left"),
                         ("fallbacks", "right"), ("ms", "right"), ("tokens in/out", "right"),
                         ("cost $", "right"), ("feedback", "right")]:
        # Ids are copied into POST /v1/feedback: never wrap or shorten them; fold long model
        # names rather than cut them.
        table.add_column(col, justify=justify,  # type: ignore[arg-type]
                         no_wrap=col in ("request id", "time (UTC)"),
                         min_width=32 if col == "request id" else None,
                         overflow="fold")
    for r in requests:
        when = dt.datetime.fromtimestamp(r.ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        tokens = "" if r.prompt_tokens is None else f"{r.prompt_tokens}/{r.completion_tokens}"
        table.add_row(when, r.id, r.key_id or "-", r.requested_model or "-", r.chosen or "-",
                      f"{r.status} {r.http_status or ''}".strip(), str(r.fallbacks),
                      "" if r.latency_ms is None else f"{r.latency_ms:.0f}", tokens,
                      f"{r.cost:.6f}", "" if r.feedback is None else f"{r.feedback:.2f}")
    out.print(table)
    # Below the table, not a column of it: the table already fills 150 columns, and a rule's
    # name is what an operator greps for, so it is printed whole, once per request that has one.
    decided = [(r.id, _rule_and_route(r)) for r in requests if r.rule or r.named_route]
    if decided:
        out.print("decided by a rule or named route:")
        for request_id, what in decided:
            out.print(f"  {request_id}  {what}", highlight=False, soft_wrap=True)
    conversations = [r for r in requests if r.conversation_id is not None]
    if conversations:
        out.print("conversations (pinned: served on the conversation's pinned model):")
        for r in conversations:
            out.print(f"  {r.id}  {r.conversation_id}  "
                      f"{'pinned' if r.pinned else 'not pinned'}", highlight=False,
                      soft_wrap=True)
    period = "all time" if days is None else f"last {days:g} day(s)"
    totals = Table(title=f"spend per model ({period})", title_justify="left")
    for col in ("model", "requests", "tokens in", "tokens out", "cost $"):
        totals.add_column(col, justify="left" if col == "model" else "right")
    for s in spend:
        totals.add_row(s.model, str(s.requests), str(s.prompt_tokens), str(s.completion_tokens),
                       f"{s.cost:.6f}")
    if spend:
        totals.add_row("total", str(sum(s.requests for s in spend)),
                       str(sum(s.prompt_tokens for s in spend)),
                       str(sum(s.completion_tokens for s in spend)),
                       f"{sum(s.cost for s in spend):.6f}", style="bold")
    out.print(totals)

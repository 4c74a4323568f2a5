"""``polyroute report``: what routing saved (or, in shadow mode, would save) on logged traffic."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from pathlib import Path

from polyroute.cli._common import check_out_file, out
from polyroute.errors import ConfigError

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="spend and quality of routing against always-default and always-best",
        description="From the gateway's logged traffic: what the routed choices cost against "
                    "sending every request to the default model or to the best one, the "
                    "router's quality estimates, feedback scores, and shadow mode's judge "
                    "verdicts, each with a 95%% interval.")
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="gateway config (its store, and the backends' prices)")
    p.add_argument("--since", default="7d", metavar="WHEN",
                   help="start of the window: a span back from now (30m, 24h, 7d, 2w) or a "
                        "date/time (2026-11-01, 2026-11-01T12:00); default: %(default)s")
    p.add_argument("--until", metavar="WHEN", help="end of the window (default: now)")
    p.add_argument("--default", metavar="MODEL",
                   help="the default model to compare with (shadow mode's served model if "
                        "unset)")
    p.add_argument("--best", metavar="MODEL",
                   help="the always-best baseline (default: the model with the best mean "
                        "estimated quality)")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="also draw cost per request against estimated quality")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)


def parse_when(text: str, now: float | None = None) -> float:
    """A unix time from ``7d``-style spans back from ``now`` or an ISO date/time (UTC)."""
    now = time.time() if now is None else now
    m = _SPAN.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{text!r}: give a span such as 24h or 7d, or a date such as "
                          f"2026-11-01") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def run(args: argparse.Namespace) -> int:
    from polyroute.config import load_config
    from polyroute.evaluation.traffic import Prices, savings_report
    from polyroute.store import open_store

    since = parse_when(args.since)
    until = parse_when(args.until) if args.until else None
    if until is not None and until <= since:
        raise ConfigError("--until must be after --since")
    if args.plot is not None:
        check_out_file(args.plot, "--plot")
    config = load_config(args.config)
    prices = {b.name: Prices(b.input_price_per_mtok, b.output_price_per_mtok)
              for b in config.backends}
    store = open_store(config.store, readonly=True)
    try:
        report = savings_report(store.requests_between(since, until),
                                store.shadow_comparisons(since, until), prices,
                                default=args.default, best=args.best, since=since, until=until)
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        _print(report)
    if args.plot is not None:
        _plot(report, args.plot)
        out.print(f"plot written to {args.plot}")
    return 0


def _fmt(iv, scale: float = 1.0, spec: str = ".4f", unit: str = "") -> str:
    if iv is None:
        return "—"
    return (f"{iv.value * scale:{spec}}{unit} "
            f"[{iv.low * scale:{spec}}, {iv.high * scale:{spec}}]")


def _print(r) -> None:
    from rich.table import Table

    start = dt.datetime.fromtimestamp(r.since, dt.UTC).strftime("%Y-%m-%d %H:%M")
    end = "now" if r.until is None else \
        dt.datetime.fromtimestamp(r.until, dt.UTC).strftime("%Y-%m-%d %H:%M")
    out.print(f"[bold]Routing report[/bold], {start} → {end} UTC: {r.requests} routed requests"
              f" ({r.shadow_requests} in shadow mode, {r.unpriced} not priced). Default: "
              f"{r.default}; best: {r.best}.")
    t = Table(title="Cost and estimated quality per strategy (95 % intervals)")
    for col in ("strategy", "$ per 1k requests", "total $", "estimated quality"):
        t.add_column(col, justify="left" if col == "strategy" else "right")
    for s in ("routed", "always-default", "always-best"):
        t.add_row(s, _fmt(r.cost_per_request[s], 1000, ".4f"), f"{r.total_cost[s]:.4f}",
                  _fmt(r.estimated_quality.get(s), 1, ".3f"))
    out.print(t)
    out.print(f"savings vs always-default: {_fmt(r.savings_vs_default, 100, '.1f', ' %')}; "
              f"vs always-best: {_fmt(r.savings_vs_best, 100, '.1f', ' %')}")
    if r.share:
        out.print("routed choices: " + ", ".join(f"{m} {s:.0%}" for m, s in r.share.items()))
    if r.feedback:
        fb = Table(title="Feedback scores by the model that served")
        for col in ("model", "mean [95 %]", "scores"):
            fb.add_column(col, justify="left" if col == "model" else "right")
        for model, (iv, n) in r.feedback.items():
            fb.add_row(model, _fmt(iv, 1, ".3f"), str(n))
        out.print(fb)
    judged = sum(r.verdicts.values())
    if judged:
        v = r.verdicts
        out.print(f"shadow comparisons: {judged} (routed better {v['routed']}, tie {v['tie']}, "
                  f"same model {v['same']}, default better {v['served']}, not judged "
                  f"{v['none']}); routed win rate, ties half: "
                  f"{_fmt(r.routed_win_rate, 100, '.1f', ' %')}; their cost "
                  f"${r.shadow_cost:.4f}")


def _plot(r, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for s, marker in zip(("routed", "always-default", "always-best"), "o^s", strict=True):
        c = r.cost_per_request[s]
        q = r.estimated_quality.get(s)
        y = q.value if q is not None else 0.0
        yerr = [[y - q.low], [q.high - y]] if q is not None else None
        ax.errorbar([c.value * 1000], [y], xerr=[[(c.value - c.low) * 1000],
                                                 [(c.high - c.value) * 1000]],
                    yerr=yerr, marker=marker, capsize=3, linestyle="none", label=s)
    ax.set_xlabel("dollars per 1,000 requests")
    ax.set_ylabel("estimated quality (router)")
    ax.set_title(f"{r.requests} requests: routing vs baselines")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

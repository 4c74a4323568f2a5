"""``polyroute route``: ask a trained router which model should answer a prompt."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from polyroute.cli._common import out
from polyroute.data.loaders import read_jsonl
from polyroute.errors import DataError
from polyroute.pipeline import Pipeline
from polyroute.policies import Preference, decisions, policy_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "route", help="choose a model for one prompt (or a JSONL file of prompts)",
        description="Load a trained router, estimate every model's quality and cost for the "
                    "prompt(s), and apply the policy: --lam (trade-off, default 0 = best quality), "
                    "--budget (mean dollars per prompt over the batch) or --floor (cheapest model "
                    "estimated to reach this quality).",
    )
    p.add_argument("prompt", nargs="?", help="the prompt text (or use --jsonl)")
    p.add_argument("--router", type=Path, required=True, metavar="DIR",
                   help="directory written by `polyroute train`")
    p.add_argument("--jsonl", type=Path, metavar="FILE",
                   help='many prompts: one JSON string or {"prompt": ...} object per line')
    pref = p.add_mutually_exclusive_group()
    pref.add_argument("--lam", type=float, default=0.0,
                      help="quality given up to save the priciest model's typical cost "
                           "(default: 0)")
    pref.add_argument("--budget", type=float, help="mean dollars per prompt over the batch")
    pref.add_argument("--floor", type=float, help="minimum estimated quality in [0, 1]")
    p.add_argument("--json", action="store_true", help="print one JSON object per prompt")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")
    p.set_defaults(func=run)


def read_prompts(path: Path) -> list[str]:
    prompts = []
    for lineno, obj in read_jsonl(path, objects=False):
        text = obj.get("prompt") if isinstance(obj, dict) else obj
        if not isinstance(text, str):
            raise DataError(f"{path}: line {lineno}: expected a string or an object with a "
                            f"'prompt' string")
        prompts.append(text)
    if not prompts:
        raise DataError(f"{path}: no prompts")
    return prompts


def run(args: argparse.Namespace) -> int:
    if (args.prompt is None) == (args.jsonl is None):
        raise DataError("give either a prompt or --jsonl FILE")
    prompts = read_prompts(args.jsonl) if args.jsonl else [args.prompt]
    pipe = Pipeline.load(args.router, cache=False if args.no_cache else None)
    policy = policy_for(Preference(lam=args.lam, budget=args.budget, floor=args.floor))
    short_of_floor: list[float] = []  # best estimate of each prompt no model reaches the floor on
    for text, decision in zip(prompts, decisions(pipe.estimate(prompts), policy), strict=True):
        row = {"prompt": text, "model": decision.model, "candidates": list(decision.candidates),
               "estimated_quality": decision.estimated_quality,
               "estimated_cost": decision.estimated_cost}
        if args.floor is not None:
            best = max(decision.estimated_quality.values())
            row["floor_reached"] = bool(best >= args.floor)
            if not row["floor_reached"]:
                short_of_floor.append(best)
        if args.json:
            print(json.dumps(row))
        else:
            _print_decision(text, decision)
    sys.stdout.flush()
    if short_of_floor:
        print(f"polyroute: note: no model is estimated to reach the floor {args.floor:g} for "
              f"{len(short_of_floor)} of {len(prompts)} prompt(s) (highest estimate "
              f"{max(short_of_floor):.3f}); those went to the model with the highest estimated "
              f"quality", file=sys.stderr)
    return 0


def _print_decision(text: str, decision) -> None:
    from rich.table import Table

    short = " ".join(text.split())
    short = short if len(short) <= 70 else short[:67] + "..."
    table = Table(title=f"{short!r} → [bold]{decision.model}[/bold]", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("model")
    table.add_column("est. quality", justify="right")
    table.add_column("est. cost $", justify="right")
    for rank, name in enumerate(decision.candidates, start=1):
        table.add_row(str(rank), name, f"{decision.estimated_quality[name]:.3f}",
                      f"{decision.estimated_cost[name]:.6f}",
                      style="bold" if rank == 1 else None)
    out.print(table)

"""``polyroute data check``: validate an outcomes file and describe it."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from polyroute.cli._common import add_encoding_argument, out
from polyroute.data import DEFAULT_OUTPUT_TOKENS, Outcomes, load_outcomes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect outcome files",
                       description="Commands for outcome data files.")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dsub.required = True
    c = dsub.add_parser("check", help="validate a data file and print its shape",
                        description="Load FILE with every validation rule and print prompts, "
                                    "models, tasks, known cells, and per-model quality/cost. "
                                    "Exits 2 with one line naming the file, line and field on "
                                    "the first problem.")
    c.add_argument("file", type=Path, metavar="FILE")
    c.add_argument("--models", type=Path, metavar="FILE",
                   help="models file with prices (default: models.json beside FILE)")
    c.add_argument("--output-tokens", type=int, default=DEFAULT_OUTPUT_TOKENS, metavar="N",
                   help="output tokens assumed where no cost is recorded (default: %(default)s)")
    add_encoding_argument(c)
    c.set_defaults(func=run_check)


def describe(outcomes: Outcomes) -> dict:
    """Shape and per-model summary of an outcomes table (what ``data check`` prints)."""
    known = ~np.isnan(outcomes.quality)
    return {
        "prompts": outcomes.n_prompts,
        "models": len(outcomes.models),
        "tasks": len(outcomes.task_names),
        "known_cells": int(known.sum()),
        "cells": int(known.size),
        "per_model": {name: {"quality": float(q), "cost": float(c), "known": int(k)}
                      for name, q, c, k in zip(outcomes.model_names, outcomes.mean_quality(),
                                               outcomes.mean_cost(), known.sum(axis=0),
                                               strict=True)},
    }


def run_check(args: argparse.Namespace) -> int:
    from rich.table import Table

    outcomes = load_outcomes(args.file, args.models, output_tokens=args.output_tokens,
                             encoding=args.encoding)
    info = describe(outcomes)
    out.print(f"[green]ok[/green] {args.file}: {info['prompts']} prompts × {info['models']} models,"
              f" {info['tasks']} tasks, {info['known_cells']}/{info['cells']} quality cells known")
    table = Table(title_justify="left")
    table.add_column("model")
    table.add_column("mean quality", justify="right")
    table.add_column("mean cost $", justify="right")
    table.add_column("known", justify="right")
    for name, row in info["per_model"].items():
        table.add_row(name, f"{row['quality']:.3f}", f"{row['cost']:.6f}", str(row["known"]))
    out.print(table)
    return 0

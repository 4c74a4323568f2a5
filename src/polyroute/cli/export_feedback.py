"""``polyroute export-feedback``: logged requests with feedback → an outcomes file for training."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polyroute.cli._common import check_out_file
from polyroute.cli.logs import add_store_arguments, open_args_store
from polyroute.data.loaders import outcomes_format
from polyroute.store import export_feedback


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-feedback", help="write requests that got feedback as a training outcomes file",
        description="Write every logged request that received feedback as one row of the long "
                    "outcomes format (prompt_id = request id, prompt, task = route profile, "
                    "model = backend that answered, quality = latest score, cost, latency). "
                    "Train on it with `polyroute train --data OUT`.")
    add_store_arguments(p)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="outcomes file to write, in the format its name asks for: .jsonl, "
                        ".csv or .parquet (text formats optionally .gz)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outcomes_format(args.output)  # unknown extension: refused before anything is read
    check_out_file(args.output, "-o/--output")
    store = open_args_store(args)
    try:
        result = export_feedback(store, args.output)
        total, unusable = store.count_feedback()
    finally:
        store.close()
    print(f"wrote {result.rows} request(s) with feedback for {len(result.models)} model(s) "
          f"({', '.join(result.models)}) to {result.path}")
    if unusable:
        print(f"polyroute: note: {unusable} request(s) with feedback were skipped (failed, or "
              f"their prompt was not recorded)", file=sys.stderr)
    return 0

"""The ``polyroute`` command. Thin by design: each sub-command lives in its own module, parses its
arguments and calls one library function; user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from polyroute.errors import PolyrouteError

#: Modules under polyroute.cli that each define ``register(subparsers)``; order = order in --help.
COMMAND_MODULES = ["evaluate", "train", "route", "data",
                   "serve", "config", "onboard", "guard", "logs", "report", "export_feedback"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyroute",
        description="Learn which LLM should answer each request, and serve that decision.",
    )
    parser.add_argument("--version", action="version", version="polyroute 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"polyroute.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Models ship inside installed packages; never let a library wander off to a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PolyrouteError as exc:
        print(f"polyroute: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("polyroute: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

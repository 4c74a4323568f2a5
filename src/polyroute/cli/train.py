"""``polyroute train``: fit a router on outcomes and save it as a directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from polyroute.cli._common import (
    add_cache_arguments,
    add_data_arguments,
    cache_setting,
    check_out_dir,
    err,
    load_data,
    out,
)
from polyroute.errors import RouterError
from polyroute.pipeline import Pipeline
from polyroute.routers import available_routers, get_router_class


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="fit a router and save it to a directory",
        description="Fit a router on recorded outcomes (default: the bundled data) and save it "
                    "(JSON + npz, no pickle) with its featurizer id and cost model, ready for "
                    "`polyroute route` and `polyroute serve`.",
    )
    p.add_argument("--router", default="knn",
                   help=f"router name (default: %(default)s); one of: "
                        f"{', '.join(available_routers(include_evaluation_only=False))}")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="router hyper-parameter, VALUE parsed as JSON (repeatable), e.g. k=20")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="directory to write the trained router to")
    add_data_arguments(p)
    add_cache_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed for --sample (default: 0)")
    p.set_defaults(func=run)


def parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RouterError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def run(args: argparse.Namespace) -> int:
    if get_router_class(args.router).evaluation_only:
        raise RouterError(f"{args.router!r} reads the true outcomes; it exists for evaluation only")
    # Bad --param values (checked against the router's declared constraints as it is built)
    # and an unwritable --out fail here, before the (slow) data load and embedding.
    pipe = Pipeline(args.router, featurizer=args.featurizer, cache=cache_setting(args),
                    router_params=parse_params(args.param))
    check_out_dir(args.out)
    outcomes = load_data(args)
    err.print(f"[dim]training {args.router} on {outcomes}[/dim]")
    pipe.fit(outcomes, progress=True)
    path = pipe.save(args.out)
    out.print(f"saved {pipe.router!r} for models {', '.join(pipe.models)} to {path}")
    return 0

"""``polyroute evaluate``: train routers, score them on held-out outcomes, show the leaderboard."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from polyroute.cli._common import (
    add_cache_arguments,
    add_data_arguments,
    cache_setting,
    check_out_dir,
    err,
    load_data,
    out,
    steps,
    warnings_as_notes,
)
from polyroute.data import train_test_split
from polyroute.data.outcomes import align_models
from polyroute.errors import DataError
from polyroute.evaluation import (
    DEFAULT_ROUTERS,
    cross_validate,
    evaluate_split,
    leave_task_out_evaluation,
)
from polyroute.evaluation.report import leaderboard, per_task_table, plot_curves, write_metrics
from polyroute.evaluation.runner import check_router_names, warm_cache
from polyroute.evaluation.sweep import POLICY_SWEEPS
from polyroute.routers import available_routers


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="compare routers on held-out outcomes (AIQ, curves, per-task table)",
        description="Train each router on the training part, sweep the cost-quality trade-off "
                    "over a wide range, and score the decisions on the test part against the "
                    "zero router (single models) and the oracle. With no data arguments it uses "
                    "the bundled llmrouter-bench data with a seeded 80/20 split.",
    )
    add_data_arguments(p, train_test=True)
    p.add_argument("--routers", default=",".join(DEFAULT_ROUTERS), metavar="LIST",
                   help=f"comma-separated router names (default: %(default)s); available: "
                        f"{', '.join(available_routers())}")
    p.add_argument("--policy", default="tradeoff", choices=sorted(POLICY_SWEEPS),
                   help="policy family swept for every router: tradeoff (one model per prompt), "
                        "cascade (cheap model first, escalate when its estimate is low; every "
                        "call charged) or topk (a set of models per prompt, scored by its best "
                        "member, every member charged) (default: %(default)s)")
    add_cache_arguments(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation instead of "
                                                          "one split")
    mode.add_argument("--leave-task-out", action="store_true",
                      help="hold out each task in turn (out-of-distribution check)")
    p.add_argument("--test-size", type=float, default=0.2, metavar="F",
                   help="test share for the single split (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed for splits (default: 0)")
    p.add_argument("--out", type=Path, default=Path("runs/evaluate"), metavar="DIR",
                   help="where metrics.json and curves.png go (default: %(default)s)")
    p.add_argument("--no-plot", action="store_true", help="skip curves.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with warnings_as_notes():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    names = [n.strip() for n in args.routers.split(",") if n.strip()]
    check_router_names(names)
    if (args.train is None) != (args.test is None):
        raise DataError("--train and --test go together")
    if args.cv is not None and args.cv < 2:
        raise DataError(f"--cv must be an integer >= 2 (the number of folds), got {args.cv}")
    check_out_dir(args.out)
    if args.train is not None:
        if args.data is not None or args.cv is not None or args.leave_task_out:
            raise DataError("--train/--test cannot be combined with --data, --cv or "
                            "--leave-task-out")
        # Models are matched by name; one only a file holds is named now, before any work.
        train, test = align_models(load_data(args, args.train), load_data(args, args.test))
        full = None
    else:
        full = load_data(args)
        train, test = train_test_split(full, args.test_size, args.seed) if not (
            args.cv or args.leave_task_out) else (None, None)
    cache = cache_setting(args)
    err.print(f"[dim]data: {full if full is not None else f'{train} / {test}'}[/dim]")
    for part in [full] if full is not None else [train, test]:
        warm_cache(part, args.featurizer, cache)

    if args.cv:
        with steps(args.cv * (len(names) + 2), f"{args.cv}-fold CV") as step:
            result = cross_validate(full, names, args.featurizer, n_splits=args.cv,
                                    random_state=args.seed, cache=cache, policy=args.policy,
                                    step=step)
        title = f"{args.cv}-fold cross-validation"
    elif args.leave_task_out:
        n_tasks = len(full.task_names)
        with steps(n_tasks * (len(names) + 2), "leave-task-out") as step:
            result = leave_task_out_evaluation(full, names, args.featurizer, cache=cache,
                                               policy=args.policy, step=step)
        title = "leave-task-out (every prompt routed by routers that never saw its task)"
    else:
        with steps(len(names) + 2, "evaluating") as step:
            result = evaluate_split(train, test, names, args.featurizer, cache=cache,
                                    policy=args.policy, step=step)
        title = f"held-out test set ({test.n_prompts} prompts)"
    result["setup"] = {"routers": names, "featurizer": args.featurizer, "policy": args.policy,
                       "mode": "cv" if args.cv else "leave-task-out" if args.leave_task_out
                       else "split", "seed": args.seed,
                       "seconds": round(time.perf_counter() - started, 2)}
    out.print(leaderboard(result, f"polyroute evaluate — {title}"))
    if "per_task" in result:
        out.print(per_task_table(result["per_task"]))
    metrics = write_metrics(result, args.out)
    written = [str(metrics)]
    if not args.no_plot:
        written.append(str(plot_curves(result, args.out / "curves.png", title)))
    out.print("AIQ: mean quality over budgets between the cheapest and priciest single model; "
              "gain share: part of the oracle's AIQ gain over the zero router captured; "
              "CPTx: cost to reach x% of the best single model's quality, as a share of its cost.",
              style="dim")
    out.print(f"wrote {', '.join(written)} in {time.perf_counter() - started:.1f}s")
    return 0

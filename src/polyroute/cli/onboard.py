"""``polyroute onboard``: from backends with no outcome data to a router that covers them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from polyroute.cli._common import err, out
from polyroute.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "onboard", help="collect graded answers from new backends and train a router for them",
        description="For every backend of the gateway config that the router has no outcome "
                    "data for: ask it calibration prompts through the gateway's own backend "
                    "client (no fallback), grade each answer against its reference, keep every "
                    "answer in the store as it arrives (an interrupted run resumes and never "
                    "pays twice), then train a router covering the configured backends and save "
                    "it at router.path (the previous one is kept beside it). The plan and its "
                    "estimated cost are shown, and confirmed, before anything is sent.")
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="gateway config")
    p.add_argument("--per-model", type=int, default=100, metavar="N",
                   help="calibration prompts per backend (default: %(default)s)")
    p.add_argument("--budget", type=float, metavar="DOLLARS",
                   help="hard cap on dollars for the whole run (default: none)")
    p.add_argument("--prompts", type=Path, metavar="FILE",
                   help="your own prompts instead of the bundled calibration set: JSONL or CSV "
                        "with 'prompt' and optionally 'prompt_id', 'task', 'reference', "
                        "'metric' (every backend answers them; graded by reference or --judge)")
    p.add_argument("--judge", metavar="BACKEND",
                   help="a configured backend that grades answers without a reference grader")
    p.add_argument("--router", metavar="NAME",
                   help="router to train (default: the current router's kind, else knn)")
    p.add_argument("--max-tokens", type=int, default=512, metavar="N",
                   help="answer length cap per calibration call (default: %(default)s)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="long-format outcomes of the collected answers (default: "
                        "onboarding-outcomes.jsonl beside the config)")
    p.add_argument("--seed", type=int, default=0, help="seed for choosing prompts (default: 0)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from polyroute.config import backend_api_keys, load_config
    from polyroute.onboarding.collect import collect
    from polyroute.onboarding.run import (
        build_outcomes,
        make_plan,
        save_router,
        summary,
        write_answers,
    )
    from polyroute.routers import get_router_class
    from polyroute.store import open_store

    config = load_config(args.config)
    api_keys = backend_api_keys(config)
    if args.budget is not None and args.budget <= 0:
        raise ConfigError(f"--budget must be > 0 dollars, got {args.budget}")
    if args.router is not None:
        get_router_class(args.router)
    out_path = args.out or args.config.parent / "onboarding-outcomes.jsonl"
    store = open_store(config.store)
    try:
        plan = make_plan(config, store, per_model=args.per_model, prompts=args.prompts,
                         router=args.router, max_tokens=args.max_tokens, random_state=args.seed)
        if plan.done:
            out.print("every backend already has outcome data in the router"
                      + (" and its calibration answers in the store" if plan.backends else "")
                      + ": nothing to onboard")
            return 0
        grade = _grader(config, api_keys, args.judge, plan)
        table = Table(title="onboarding plan")
        for col in ("backend", "prompts", "already answered", "to send", "est. $",
                    "worst case $"):
            table.add_column(col, justify="left" if col == "backend" else "right")
        for bp in plan.backends:
            table.add_row(bp.backend.name, str(len(bp.items)),
                          str(len(bp.items) - len(bp.todo)), str(len(bp.todo)),
                          f"{bp.estimated_cost():.4f}", f"{bp.estimated_cost(plan.max_tokens):.4f}")
        table.add_row("total", "", "", str(plan.calls), f"{plan.estimated_cost():.4f}",
                      f"{plan.worst_case_cost():.4f}", style="bold")
        out.print(table)
        out.print(f"then train {plan.router} on {plan.featurizer} features and save it to "
                  f"{config.router.path}" + (f"; hard cap ${args.budget:g}" if args.budget
                                             else ""))
        if plan.calls and not args.yes and not _confirm(plan.calls, plan.estimated_cost()):
            err.print("polyroute: nothing sent")
            return 1
        progress = _progress_bar(plan.calls)
        with progress:
            task = progress.add_task("onboarding", total=plan.calls, answered=0, failed=0,
                                     spent=0.0)

            def on_answer(counts, _record) -> None:
                progress.update(task, advance=1, answered=counts.answered, failed=counts.failed,
                                spent=counts.spent)

            counts = asyncio.run(collect(plan.backends, api_keys, store, breaker=config.breaker,
                                         max_tokens=plan.max_tokens, budget=args.budget,
                                         grade=grade, on_answer=on_answer))
        if counts.stopped_by_budget:
            err.print(f"[yellow]stopped at the budget (${counts.spent:.4f} spent); run again "
                      f"with a larger --budget to continue where it stopped[/yellow]")
        answers = [a for bp in plan.backends for a in store.calibration_answers(bp.backend.name)]
        write_answers(answers, out_path)
        _print_summary(summary(answers))
        if counts.grading_cost:
            out.print(f"grading by the judge cost ${counts.grading_cost:.4f} this run "
                      f"(included in the ${counts.spent:.4f} spent)")
        outcomes = build_outcomes(plan, config, answers, random_state=args.seed)
        err.print(f"[dim]training {plan.router} on {outcomes}[/dim]")
        pipe, previous = save_router(outcomes, plan, config.router.path, progress=True)
    finally:
        store.close()
    out.print(f"wrote {out_path}; saved router {pipe.identity} for "
              f"{', '.join(pipe.models)} to {config.router.path}"
              + (f" (the previous one is at {previous})" if previous else ""))
    out.print("a running gateway switches to it on SIGHUP (kill -HUP <pid>) or "
              "POST /v1/admin/reload-router with an admin key")
    return 0


def _confirm(calls: int, dollars: float) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError("confirmation needed and there is no terminal: pass --yes to send "
                          f"{calls} calibration prompts (about ${dollars:.4f})")
    reply = input(f"send {calls} calibration prompts for about ${dollars:.4f}? [y/N] ")
    return reply.strip().lower() in ("y", "yes")


def _progress_bar(total: int):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} · answered {task.fields[answered]}"
                               " · failed {task.fields[failed]} · ${task.fields[spent]:.4f}"),
                    TimeElapsedColumn(), console=err, transient=False)


def _print_summary(rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(title="collected answers")
    for col in ("backend", "answers", "ungraded", "failed", "mean quality by task", "spend $",
                "p50 latency s"):
        table.add_column(col)
    for r in rows:
        tasks = ", ".join(f"{t} {q:.2f}" for t, q in r["quality_by_task"].items())
        table.add_row(r["backend"], str(r["answers"]), str(r["ungraded"]), str(r["failed"]),
                      tasks, f"{r['spend']:.4f}",
                      "-" if r["p50_latency_s"] is None else f"{r['p50_latency_s']:.2f}")
    out.print(table)


def _grader(config, api_keys, judge: str | None, plan):
    """Reference graders, and the judge (a configured backend) where a prompt needs it."""
    from polyroute.onboarding.collect import grade_by_reference

    needs_judge = any(i.reference is not None and i.reference.metric == "judge"
                      for bp in plan.backends for i in bp.items)
    if judge is None:
        if needs_judge:
            raise ConfigError("some prompts have no reference grader (no 'metric'): name a "
                              "configured backend to judge them with --judge")
        return grade_by_reference
    if judge not in config.backend_names:
        raise ConfigError(f"--judge: no backend named {judge!r}; configured: "
                          f"{', '.join(config.backend_names)}")
    from polyroute.onboarding.judging import http_judge

    grader = http_judge(config.backend(judge), api_keys.get(judge))

    def grade(item, answer):
        if item.reference is not None and item.reference.metric == "judge":
            return grader.grade(answer, item.reference)
        return grade_by_reference(item, answer)

    return grade

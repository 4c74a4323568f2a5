"""``polyroute onboard`` as a library: plan, collect, train, save — each step its own function.

From a gateway config whose backends the router has no data for, to a router that covers exactly
those backends:

1. :func:`make_plan` — which backends need data (every backend the current router does not know;
   all of them for a prompt file of the user's own), which calibration prompts each is asked
   (the same ones for every backend, chosen by :func:`~polyroute.onboarding.calibrate.
   choose_prompts` from the prompts that have a usable reference), and what that should cost.
2. :func:`~polyroute.onboarding.collect.collect` — ask, grade and store every answer as it
   arrives (resumable; a hard dollar cap).
3. :func:`build_outcomes` — the calibration outcomes of the known models plus each onboarded
   backend's column: its graded answers where asked, its expected quality elsewhere
   (:func:`~polyroute.onboarding.calibrate.add_answers`), restricted to the configured backends.
   With the user's own prompts, every backend answered every prompt and nothing is imputed.
4. :func:`save_router` — train the router on that table and save it at ``router.path``, the
   previous one kept beside it; a running gateway switches to it on SIGHUP or
   ``POST /v1/admin/reload-router``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyroute.config import BackendConfig, GatewayConfig
from polyroute.data import Outcomes, load_bundled
from polyroute.data.loaders import read_jsonl
from polyroute.data.outcomes import ModelInfo, rule_costs
from polyroute.data.references import Reference, load_references
from polyroute.errors import ConfigError, DataError
from polyroute.features import DEFAULT_FEATURIZER
from polyroute.grading import available_metrics
from polyroute.grading.prompts import task_prompt
from polyroute.onboarding.calibrate import add_answers, choose_prompts
from polyroute.onboarding.collect import DEFAULT_MAX_TOKENS, BackendPlan, CalibrationItem
from polyroute.pipeline import Pipeline
from polyroute.store import CalibrationAnswer, Store

DEFAULT_PER_MODEL = 100


@dataclass(frozen=True)
class OnboardingPlan:
    """What a run will do, shown to the user before anything is sent."""

    backends: tuple[BackendPlan, ...]
    #: Outcomes of the models the router already knows on the calibration prompts (None when
    #: the prompts are the user's own: then every backend answers every prompt).
    base: Outcomes | None
    router: str
    featurizer: str
    max_tokens: int = DEFAULT_MAX_TOKENS
    #: Target backends the current router does not cover yet.
    untrained: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        """Nothing to send and nothing to retrain: every target is answered and routed."""
        return self.calls == 0 and not self.untrained

    @property
    def calls(self) -> int:
        return sum(len(p.todo) for p in self.backends)

    def estimated_cost(self) -> float:
        return sum(p.estimated_cost() for p in self.backends)

    def worst_case_cost(self) -> float:
        return sum(p.estimated_cost(self.max_tokens) for p in self.backends)


def current_router(config: GatewayConfig) -> Pipeline | None:
    """The router saved at ``router.path``, or None if nothing is saved there yet."""
    path = config.router.path
    if path is None:
        raise ConfigError("router.path is not set: onboarding saves the router it trains there "
                          "(router.train trains at every start and cannot be onboarded)")
    if not (path / "polyroute.json").is_file():
        return None
    return Pipeline.load(path, cache=False)


def make_plan(config: GatewayConfig, store: Store, *, per_model: int = DEFAULT_PER_MODEL,
              prompts: Path | None = None, base: Outcomes | None = None,
              router: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
              random_state: int = 0) -> OnboardingPlan:
    """The plan for ``config``: nothing is sent, but answers already in ``store`` count."""
    if per_model < 1:
        raise ConfigError(f"--per-model must be at least 1, got {per_model}")
    if max_tokens < 1:
        raise ConfigError(f"--max-tokens must be at least 1, got {max_tokens}")
    pipe = current_router(config)
    known = set(pipe.models) if pipe is not None else set()
    featurizer = pipe.featurizer_spec if pipe is not None else (config.router.featurizer
                                                                or DEFAULT_FEATURIZER)
    router = router or (pipe.router.name if pipe is not None else "knn")
    if prompts is not None:
        items = read_prompts(prompts)[:per_model]
        targets, base = list(config.backends), None
    else:
        base = base if base is not None else load_bundled()
        items = calibration_items(base, load_references(), per_model, random_state)
        # Backends the router does not know, and those onboarded before (their calibration
        # answers are in the store): a run stopped by its budget, or a larger --per-model,
        # tops them up.
        onboarded = {a.backend for a in store.calibration_answers()}
        targets = [b for b in config.backends if b.name not in known or b.name in onboarded]
    answered = {b.name: frozenset(a.prompt_id for a in store.calibration_answers(b.name)
                                  if a.error is None) for b in targets}
    plans = tuple(BackendPlan(b, tuple(items), answered[b.name]) for b in targets)
    return OnboardingPlan(plans, base, router, featurizer, max_tokens,
                          untrained=tuple(b.name for b in targets if b.name not in known))


def calibration_items(base: Outcomes, references: dict[str, Reference], n: int,
                      random_state: int = 0) -> list[CalibrationItem]:
    """The ``n`` calibration prompts (joined to their references by prompt id) with a usable
    reference, chosen to place a new model among the known ones."""
    usable = np.array([pid in references and references[pid].usable for pid in base.prompt_ids])
    if not usable.any():
        raise DataError("no calibration prompt has a usable reference")
    pool = base.subset(usable)
    rows = choose_prompts(pool, min(n, pool.n_prompts), random_state=random_state)
    items = []
    for i in rows:
        ref = references[pool.prompt_ids[i]]
        items.append(CalibrationItem(pool.prompt_ids[i], pool.prompts[i], pool.tasks[i], ref,
                                     message=task_prompt(ref)))
    return items


def read_prompts(path: Path) -> list[CalibrationItem]:
    """A user's own prompts: JSONL objects or CSV rows with ``prompt`` and optionally
    ``prompt_id``, ``task``, ``reference`` (the right answer) and ``metric`` (a grader's name;
    without one, a prompt is graded by the judge)."""
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                rows = [(i + 2, dict(r)) for i, r in enumerate(csv.DictReader(fh))]
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") \
                from None
    else:
        rows = read_jsonl(path, objects=False)
    items: list[CalibrationItem] = []
    seen: set[str] = set()
    for where, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or \
                not row["prompt"].strip():
            raise DataError(f"{path}: line {where}: expected an object with a 'prompt' text")
        text = row["prompt"]
        pid = str(row.get("prompt_id") or hashlib.sha1(text.encode()).hexdigest()[:12])
        if pid in seen:
            raise DataError(f"{path}: line {where}: prompt_id {pid!r} appears twice")
        seen.add(pid)
        task = str(row.get("task") or "")
        answer = row.get("reference")
        metric = row.get("metric") or "judge"
        if metric not in available_metrics():
            raise DataError(f"{path}: line {where}: no grader for metric {metric!r}; use one "
                            f"of {', '.join(available_metrics())} (or none, for the judge)")
        ref = Reference(pid, task, str(metric), None if answer in (None, "") else str(answer),
                        prompt=text)
        items.append(CalibrationItem(pid, text, task, ref))
    if not items:
        raise DataError(f"{path}: the file holds no prompts")
    return items


def build_outcomes(plan: OnboardingPlan, config: GatewayConfig,
                   answers: Sequence[CalibrationAnswer],
                   random_state: int = 0) -> Outcomes:
    """The table to train the new router on, covering exactly the configured backends that can
    be trained (joins go by backend name and prompt id)."""
    graded = [a for a in answers if a.error is None and a.quality is not None]
    by_backend: dict[str, dict[str, float]] = {}
    for a in graded:
        by_backend.setdefault(a.backend, {})[a.prompt_id] = float(a.quality)  # type: ignore
    targets = [p.backend for p in plan.backends]
    if plan.base is None:
        return _own_prompts_table(plan, graded)
    table, imputed = plan.base, None
    for b in targets:
        got = by_backend.get(b.name, {})
        if not got:
            continue
        onboarded = add_answers(table, _info(b), got, imputed=imputed,
                                reference=plan.base.model_names, random_state=random_state)
        table, imputed = onboarded.outcomes, onboarded.imputed
    keep = [b.name for b in config.backends if b.name in table.model_names]
    if not keep:
        raise DataError("no backend has a graded answer yet: nothing to train a router on")
    return table.select_models(keep)


def _info(backend: BackendConfig) -> ModelInfo:
    return ModelInfo(backend.name, backend.input_price_per_mtok, backend.output_price_per_mtok)


def _own_prompts_table(plan: OnboardingPlan, graded: Sequence[CalibrationAnswer]) -> Outcomes:
    items = list(plan.backends[0].items) if plan.backends else []
    models = [p.backend for p in plan.backends
              if any(a.backend == p.backend.name for a in graded)]
    if not items or not models:
        raise DataError("no backend has a graded answer yet: nothing to train a router on")
    rows = {it.prompt_id: i for i, it in enumerate(items)}
    cols = {b.name: j for j, b in enumerate(models)}
    quality = np.full((len(items), len(models)), np.nan)
    cost = rule_costs([it.prompt for it in items], [_info(b) for b in models])
    for a in graded:
        if a.backend in cols and a.prompt_id in rows:
            quality[rows[a.prompt_id], cols[a.backend]] = a.quality
            cost[rows[a.prompt_id], cols[a.backend]] = a.cost
    return Outcomes(tuple(rows), tuple(it.prompt for it in items),
                    tuple(it.task for it in items), tuple(_info(b) for b in models),
                    quality, cost, source="<onboarding answers>")


def save_router(outcomes: Outcomes, plan: OnboardingPlan, path: Path,
                progress: bool = False) -> tuple[Pipeline, Path | None]:
    """Train ``plan.router`` on ``outcomes`` and save it at ``path``; an existing router there is
    moved beside it first (``<name>.previous-<UTC time>``), whose path is returned."""
    pipe = Pipeline(plan.router, featurizer=plan.featurizer).fit(outcomes, progress=progress)
    previous = None
    if path.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        previous = path.with_name(f"{path.name}.previous-{stamp}")
        shutil.move(str(path), previous)
    pipe.save(path)
    return pipe, previous


def write_answers(answers: Sequence[CalibrationAnswer], path: Path) -> Path:
    """The collected outcomes in the long format (loadable with ``load_outcomes``), with the
    answer text as an extra column; ungraded and failed calls are left out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for a in answers:
            if a.error is not None or a.quality is None:
                continue
            row = {"prompt_id": a.prompt_id, "prompt": a.prompt, "task": a.task,
                   "model": a.backend, "quality": a.quality, "cost": a.cost,
                   "latency": a.latency_s, "answer": a.answer}
            fh.write(json.dumps({k: v for k, v in row.items() if v is not None},
                                ensure_ascii=False) + "\n")
    return path


def summary(answers: Sequence[CalibrationAnswer]) -> list[dict]:
    """Per backend: answers graded, failed, mean quality per task, spend, p50 latency."""
    out = []
    for backend in dict.fromkeys(a.backend for a in answers):
        mine = [a for a in answers if a.backend == backend]
        graded = [a for a in mine if a.error is None and a.quality is not None]
        tasks: dict[str, list[float]] = {}
        for a in graded:
            tasks.setdefault(a.task or "-", []).append(float(a.quality))  # type: ignore
        latencies = [a.latency_s for a in mine if a.latency_s is not None]
        out.append({"backend": backend, "answers": len(graded),
                    "ungraded": sum(1 for a in mine if a.error is None and a.quality is None),
                    "failed": sum(1 for a in mine if a.error is not None),
                    "quality_by_task": {t: float(np.mean(v)) for t, v in sorted(tasks.items())},
                    "spend": float(sum(a.cost for a in mine)),
                    "p50_latency_s": float(np.median(latencies)) if latencies else None})
    return out

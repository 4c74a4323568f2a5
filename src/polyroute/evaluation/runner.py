"""Train routers on one part of the outcomes, score them on another, summarise.

Three protocols share one core (:func:`evaluate_split`): a single split, k-fold cross-validation
and leave-task-out (train on every task but one, test on the held-out task).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from polyroute.data import Outcomes, kfold, leave_task_out
from polyroute.data.outcomes import align_models, shared_models
from polyroute.evaluation.metrics import (
    CPT_LEVELS,
    Reference,
    add_gain_share,
    cpt_key,
    summarize,
)
from polyroute.evaluation.sweep import (
    DEFAULT_LAMBDAS,
    operating_points,
    policy_sweep,
    single_model_points,
    sweep_points,
)
from polyroute.features import DEFAULT_FEATURIZER, make_featurizer, with_cache
from polyroute.pipeline import Pipeline
from polyroute.routers import Estimates, available_routers, get_router_class
from polyroute.routers.cost import CostModel

Step = Callable[[str], None]
DEFAULT_ROUTERS = ("best-single", "random", "knn", "linear", "mlp", "mf", "cluster", "ensemble")


def _noop(_: str) -> None:
    pass


def check_router_names(names: Sequence[str]) -> list[str]:
    """Validate router names early (before any embedding work); the oracle is always added."""
    known = available_routers()
    for name in names:
        get_router_class(name)  # raises RouterError naming the choices
    return [n for n in names if n != "oracle" and n in known]


def warm_cache(outcomes: Outcomes, featurizer: str, cache: Any = None) -> None:
    """Embed every prompt into the cache up front, with a progress bar, so the evaluation proper
    only reads. A featurizer that must be fitted (TF-IDF) is skipped: it is fitted per split."""
    inner = make_featurizer(featurizer)
    if getattr(inner, "needs_fit", False) or cache is False:
        return
    with_cache(inner, cache).encode(list(outcomes.prompts), progress=True)


def embed_split(train: Outcomes, test: Outcomes, featurizer: str, cache: Any = None,
                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Embed train and test prompts (a learned featurizer is fitted on train only)."""
    inner = make_featurizer(featurizer)
    if getattr(inner, "needs_fit", False):
        inner.fit(list(train.prompts))
    f = with_cache(inner, cache)
    return (f.encode(list(train.prompts), progress=progress),
            f.encode(list(test.prompts), progress=progress))


def _references(test: Outcomes) -> tuple[Reference, dict[str, Any]]:
    singles = single_model_points(test.quality, test.cost)
    ref = Reference.from_single_models(singles, test.model_names)
    zero = summarize(singles, ref)
    zero["single_models"] = {name: {"cost": float(c), "quality": float(q)}
                             for name, (c, q) in zip(test.model_names, singles, strict=True)}
    return ref, zero


def align_estimates(estimates: dict[str, Estimates],
                    test: Outcomes) -> tuple[dict[str, Estimates], Outcomes]:
    """Estimates and test outcomes on the models they share, matched by name, in the test's order.

    Rows are the caller's business (estimates are made for ``test``'s prompts, row for row);
    columns are matched here, so a router trained on a file that lists the models in another
    order is still scored against its own models' outcomes.
    """
    names = test.model_names
    for label, est in estimates.items():
        if set(est.models) != set(names):
            names = shared_models(names, est.models, left_label="test",
                                  right_label=f"{label} estimates")
    return ({label: est.select_models(names) for label, est in estimates.items()},
            test.select_models(names))


def score_estimates(estimates: dict[str, Estimates], test: Outcomes,
                    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
                    policy: str = "tradeoff") -> dict[str, Any]:
    """Zero router, oracle and every router's metrics on ``test`` (rows aligned with estimates;
    models matched by name, see :func:`align_estimates`).

    Routers are swept over the ``policy`` family (see ``POLICY_SWEEPS``); the oracle always over
    the trade-off, which is already the best any policy can do with true qualities.
    """
    estimates, test = align_estimates(estimates, test)
    ref, zero = _references(test)
    scale = next(iter(estimates.values())).cost_scale if estimates else 1.0
    oracle_est = Estimates(models=test.model_names, quality=np.nan_to_num(test.quality),
                           cost=test.cost, cost_scale=scale)
    oracle = summarize(operating_points(oracle_est, test.quality, test.cost,
                                        knobs=lambdas), ref)
    policies = policy_sweep(policy)
    routers = {name: summarize(sweep_points(est, test.quality, test.cost, policies), ref)
               for name, est in estimates.items()}
    for result in (zero, oracle, *routers.values()):
        add_gain_share(result, zero["aiq"], oracle["aiq"])
    return {"reference": vars(ref), "zero_router": zero, "oracle": oracle, "routers": routers}


def fit_and_estimate(train: Outcomes, test: Outcomes, routers: Sequence[str],
                     featurizer: str = DEFAULT_FEATURIZER, *, cache: Any = None,
                     router_params: dict[str, dict[str, Any]] | None = None,
                     features: tuple[np.ndarray, np.ndarray] | None = None,
                     step: Step = _noop) -> tuple[dict[str, Estimates], dict[str, dict]]:
    """Fit each router on ``train`` and estimate ``test``; also return fit/estimate timings.

    Only the models both tables hold take part (matched by name, see
    :func:`~polyroute.data.outcomes.align_models`), checked before any embedding work.
    """
    names = check_router_names(routers)
    train, test = align_models(train, test)
    if features is None:
        step("embedding prompts")
        features = embed_split(train, test, featurizer, cache)
    x_train, x_test = features
    cost_model = CostModel.fit(train)
    estimates: dict[str, Estimates] = {}
    timings: dict[str, dict[str, float]] = {}
    for name in names:
        step(f"fitting {name}")
        pipe = Pipeline(name, featurizer=featurizer, cache=False,
                        router_params=(router_params or {}).get(name))
        t0 = time.perf_counter()
        pipe.fit(train, features=x_train)
        t1 = time.perf_counter()
        est = pipe.router.estimate(x_test)
        est = est.with_cost(cost_model.predict(test.prompts, est.models), cost_model.cost_scale)
        t2 = time.perf_counter()
        estimates[name] = est
        timings[name] = {"fit_seconds": t1 - t0,
                         "estimate_ms_per_prompt": 1000 * (t2 - t1) / max(1, test.n_prompts)}
    return estimates, timings


def evaluate_split(train: Outcomes, test: Outcomes, routers: Sequence[str],
                   featurizer: str = DEFAULT_FEATURIZER, *, cache: Any = None,
                   router_params: dict[str, dict[str, Any]] | None = None,
                   features: tuple[np.ndarray, np.ndarray] | None = None,
                   per_task: bool = True, policy: str = "tradeoff",
                   step: Step = _noop) -> dict[str, Any]:
    """Fit each router on ``train``, estimate ``test``, and score everything on ``test``.

    A model only one of the two tables holds is left out (with a :class:`ModelMismatchWarning`
    naming it); tables that share no model are a DataError, raised before any work.
    """
    train, test = align_models(train, test)
    estimates, timings = fit_and_estimate(train, test, routers, featurizer, cache=cache,
                                          router_params=router_params, features=features,
                                          step=step)
    step("scoring")
    result = score_estimates(estimates, test, policy=policy)
    for name, t in timings.items():
        result["routers"][name].update(t)
    result["n_train"], result["n_test"] = train.n_prompts, test.n_prompts
    if per_task and len(test.task_names) > 1:
        result["per_task"] = per_task_aiq(estimates, test, policy)
    return result


def per_task_aiq(estimates: dict[str, Estimates], test: Outcomes,
                 policy: str = "tradeoff") -> dict[str, dict[str, float]]:
    """AIQ of every router (and the references) on each task's prompts, with per-task budgets."""
    tasks = np.asarray(test.tasks)
    table: dict[str, dict[str, float]] = {}
    for task in test.task_names:
        rows = np.flatnonzero(tasks == task)
        sub = score_estimates({n: e.subset(rows) for n, e in estimates.items()},
                              test.subset(rows), policy=policy)
        row = {"zero_router": sub["zero_router"]["aiq"], "oracle": sub["oracle"]["aiq"]}
        row.update({n: r["aiq"] for n, r in sub["routers"].items()})
        row["n"] = int(len(rows))
        table[task] = row
    return table


# -- several splits --------------------------------------------------------------------------
_SUMMARY_KEYS = ("aiq", "best_quality", "best_quality_cost",
                 *(cpt_key(level) for level in CPT_LEVELS),
                 "oracle_gain_share", "fit_seconds", "estimate_ms_per_prompt")


def combine(results: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    """Mean and spread over splits; operating points are pooled (mean over splits per λ)."""

    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in _SUMMARY_KEYS:
            if key not in parts[0]:
                continue
            vals = [p[key] for p in parts]
            if any(v is None for v in vals):
                out[key] = None  # not reached on some split: no honest mean exists
                continue
            out[key] = float(np.mean(vals))
            out[f"{key}_std"] = float(np.std(vals))
        out["per_split"] = {lab: p["aiq"] for lab, p in zip(labels, parts, strict=True)}
        out["points"] = np.mean([p["points"] for p in parts], axis=0).tolist()
        return out

    first = results[0]
    combined: dict[str, Any] = {
        "zero_router": merge([r["zero_router"] for r in results]),
        "oracle": merge([r["oracle"] for r in results]),
        "routers": {n: merge([r["routers"][n] for r in results]) for n in first["routers"]},
        "splits": labels,
    }
    combined["zero_router"]["single_models"] = first["zero_router"].get("single_models")
    return combined


def cross_validate(outcomes: Outcomes, routers: Sequence[str],
                   featurizer: str = DEFAULT_FEATURIZER, *, n_splits: int = 5,
                   random_state: int = 0, cache: Any = None,
                   router_params: dict[str, dict[str, Any]] | None = None,
                   policy: str = "tradeoff", step: Step = _noop) -> dict[str, Any]:
    """k-fold cross-validation; each fold's AIQ uses that fold's own budget range."""
    check_router_names(routers)
    policy_sweep(policy)  # fail on a bad name before any work
    folds = list(kfold(outcomes, n_splits, random_state))  # and on a bad n_splits
    all_features = _embed_all(outcomes, featurizer, cache, step)
    results, labels = [], []
    for k, (train, test) in enumerate(folds):
        step(f"fold {k + 1}/{n_splits}")
        feats = None if all_features is None else _rows(outcomes, all_features, train, test)
        results.append(evaluate_split(train, test, routers, featurizer, cache=cache,
                                      router_params=router_params, features=feats,
                                      per_task=False, policy=policy, step=step))
        labels.append(f"fold{k + 1}")
    return combine(results, labels)


def leave_task_out_evaluation(outcomes: Outcomes, routers: Sequence[str],
                              featurizer: str = DEFAULT_FEATURIZER, *, cache: Any = None,
                              router_params: dict[str, dict[str, Any]] | None = None,
                              tasks: list[str] | None = None, policy: str = "tradeoff",
                              keep_estimates: bool = False,
                              step: Step = _noop) -> dict[str, Any]:
    """Out-of-distribution check, as cross-validation grouped by task.

    Every prompt is estimated by routers that never saw a prompt of its task; the pooled
    estimates are then scored on all held-out prompts together, against the single models on
    the same prompts (the zero router) and the oracle. ``per_split`` holds each held-out task's
    own AIQ and ``aiq_std`` their spread, ``per_task`` the full per-task table. With
    ``keep_estimates``, ``estimates`` holds the pooled :class:`Estimates` per router and
    ``held_out`` the matching outcomes (e.g. for :func:`paired_bootstrap`); neither is JSON.
    """
    names = check_router_names(routers)
    splits = list(leave_task_out(outcomes, tasks))  # bad task names fail before any work
    all_features = _embed_all(outcomes, featurizer, cache, step)
    parts: list[tuple[np.ndarray, dict[str, Estimates], dict[str, dict]]] = []
    index = {pid: i for i, pid in enumerate(outcomes.prompt_ids)}
    for task, train, test in splits:
        step(f"held-out task {task}")
        feats = None if all_features is None else _rows(outcomes, all_features, train, test)
        est, timings = fit_and_estimate(train, test, names, featurizer, cache=cache,
                                        router_params=router_params, features=feats, step=step)
        parts.append((np.array([index[p] for p in test.prompt_ids]), est, timings))
    rows = np.concatenate([r for r, _e, _t in parts])
    held = outcomes.subset(rows)
    pooled = {name: _stack([e[name] for _r, e, _t in parts]) for name in names}
    step("scoring")
    result = score_estimates(pooled, held, policy=policy)
    result["per_task"] = per_task_aiq(pooled, held, policy)
    tasks_done = list(result["per_task"])
    for key, entry in [("zero_router", result["zero_router"]), ("oracle", result["oracle"]),
                       *result["routers"].items()]:
        per = {t: result["per_task"][t][key] for t in tasks_done}
        entry["per_split"] = per
        entry["aiq_std"] = float(np.std(list(per.values())))
        entry["per_task_mean_aiq"] = float(np.mean(list(per.values())))
    for name in names:
        for k in ("fit_seconds", "estimate_ms_per_prompt"):
            result["routers"][name][k] = float(np.mean([t[name][k] for _r, _e, t in parts]))
    result["splits"] = tasks_done
    result["protocol"] = "leave-task-out, pooled held-out estimates"
    if keep_estimates:
        result["estimates"], result["held_out"] = pooled, held
    return result


def _stack(parts: list[Estimates]) -> Estimates:
    """Row-wise concatenation of estimates for the same models (cost scale of the first)."""

    def cat(name: str) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in parts]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)

    return Estimates(models=parts[0].models, quality=cat("quality"), cost=cat("cost"),
                     uncertainty=cat("uncertainty"), cost_scale=parts[0].cost_scale)


def _embed_all(outcomes: Outcomes, featurizer: str, cache: Any, step: Step) -> np.ndarray | None:
    """Embed every prompt once; a featurizer that learns must instead be fitted per split."""
    inner = make_featurizer(featurizer)
    if getattr(inner, "needs_fit", False):
        return None
    step("embedding prompts")
    return with_cache(inner, cache).encode(list(outcomes.prompts))


def _rows(full: Outcomes, features: np.ndarray, train: Outcomes,
          test: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    index = {pid: i for i, pid in enumerate(full.prompt_ids)}
    return (features[[index[p] for p in train.prompt_ids]],
            features[[index[p] for p in test.prompt_ids]])

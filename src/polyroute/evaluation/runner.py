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
from polyroute.evaluation.metrics import Reference, add_gain_share, summarize
from polyroute.evaluation.sweep import DEFAULT_LAMBDAS, operating_points, single_model_points
from polyroute.features import CachedFeaturizer, make_featurizer
from polyroute.pipeline import Pipeline
from polyroute.routers import Estimates, available_routers, get_router_class
from polyroute.routers.cost import CostModel

Step = Callable[[str], None]
DEFAULT_ROUTERS = ("best-single", "random", "knn", "linear", "mlp", "mf", "cluster")


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
    CachedFeaturizer(inner, None if cache in (None, True) else cache).encode(
        list(outcomes.prompts), progress=True)


def embed_split(train: Outcomes, test: Outcomes, featurizer: str, cache: Any = None,
                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Embed train and test prompts (a learned featurizer is fitted on train only)."""
    inner = make_featurizer(featurizer)
    if getattr(inner, "needs_fit", False):
        inner.fit(list(train.prompts))
    f = inner if cache is False else CachedFeaturizer(inner, None if cache in (None, True)
                                                      else cache)
    return (f.encode(list(train.prompts), progress=progress),
            f.encode(list(test.prompts), progress=progress))


def _references(test: Outcomes) -> tuple[Reference, dict[str, Any]]:
    singles = single_model_points(test.quality, test.cost)
    ref = Reference.from_single_models(singles, test.model_names)
    zero = summarize(singles, ref)
    zero["single_models"] = {name: {"cost": float(c), "quality": float(q)}
                             for name, (c, q) in zip(test.model_names, singles, strict=True)}
    return ref, zero


def score_estimates(estimates: dict[str, Estimates], test: Outcomes,
                    lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> dict[str, Any]:
    """Zero router, oracle and every router's metrics on ``test`` (rows aligned with estimates)."""
    ref, zero = _references(test)
    scale = next(iter(estimates.values())).cost_scale if estimates else 1.0
    oracle_est = Estimates(models=test.model_names, quality=np.nan_to_num(test.quality),
                           cost=test.cost, cost_scale=scale)
    oracle = summarize(operating_points(oracle_est, test.quality, test.cost,
                                        knobs=lambdas), ref)
    routers = {name: summarize(operating_points(est, test.quality, test.cost, knobs=lambdas), ref)
               for name, est in estimates.items()}
    for result in (zero, oracle, *routers.values()):
        add_gain_share(result, zero["aiq"], oracle["aiq"])
    return {"reference": vars(ref), "zero_router": zero, "oracle": oracle, "routers": routers}


def evaluate_split(train: Outcomes, test: Outcomes, routers: Sequence[str],
                   featurizer: str = "minilm", *, cache: Any = None,
                   router_params: dict[str, dict[str, Any]] | None = None,
                   features: tuple[np.ndarray, np.ndarray] | None = None,
                   per_task: bool = True, step: Step = _noop) -> dict[str, Any]:
    """Fit each router on ``train``, estimate ``test``, and score everything on ``test``."""
    names = check_router_names(routers)
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
        est = pipe.router.estimate(x_test).with_cost(cost_model.predict(test.prompts),
                                                     cost_model.cost_scale)
        t2 = time.perf_counter()
        estimates[name] = est
        timings[name] = {"fit_seconds": t1 - t0,
                         "estimate_ms_per_prompt": 1000 * (t2 - t1) / max(1, test.n_prompts)}
    step("scoring")
    result = score_estimates(estimates, test)
    for name, t in timings.items():
        result["routers"][name].update(t)
    result["n_train"], result["n_test"] = train.n_prompts, test.n_prompts
    if per_task and len(test.task_names) > 1:
        result["per_task"] = per_task_aiq(estimates, test)
    return result


def per_task_aiq(estimates: dict[str, Estimates], test: Outcomes) -> dict[str, dict[str, float]]:
    """AIQ of every router (and the references) on each task's prompts, with per-task budgets."""
    tasks = np.asarray(test.tasks)
    table: dict[str, dict[str, float]] = {}
    for task in test.task_names:
        rows = np.flatnonzero(tasks == task)
        sub = score_estimates({n: e.subset(rows) for n, e in estimates.items()}, test.subset(rows))
        row = {"zero_router": sub["zero_router"]["aiq"], "oracle": sub["oracle"]["aiq"]}
        row.update({n: r["aiq"] for n, r in sub["routers"].items()})
        row["n"] = int(len(rows))
        table[task] = row
    return table


# -- several splits --------------------------------------------------------------------------
_SUMMARY_KEYS = ("aiq", "best_quality", "best_quality_cost", "cpt50", "cpt80", "cpt95",
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


def cross_validate(outcomes: Outcomes, routers: Sequence[str], featurizer: str = "minilm", *,
                   n_splits: int = 5, random_state: int = 0, cache: Any = None,
                   router_params: dict[str, dict[str, Any]] | None = None,
                   step: Step = _noop) -> dict[str, Any]:
    """k-fold cross-validation; each fold's AIQ uses that fold's own budget range."""
    check_router_names(routers)
    all_features = _embed_all(outcomes, featurizer, cache, step)
    results, labels = [], []
    for k, (train, test) in enumerate(kfold(outcomes, n_splits, random_state)):
        step(f"fold {k + 1}/{n_splits}")
        feats = None if all_features is None else _rows(outcomes, all_features, train, test)
        results.append(evaluate_split(train, test, routers, featurizer, cache=cache,
                                      router_params=router_params, features=feats,
                                      per_task=False, step=step))
        labels.append(f"fold{k + 1}")
    return combine(results, labels)


def leave_task_out_evaluation(outcomes: Outcomes, routers: Sequence[str],
                              featurizer: str = "minilm", *, cache: Any = None,
                              router_params: dict[str, dict[str, Any]] | None = None,
                              tasks: list[str] | None = None,
                              step: Step = _noop) -> dict[str, Any]:
    """Out-of-distribution check: every task in turn is unseen at training time."""
    check_router_names(routers)
    all_features = _embed_all(outcomes, featurizer, cache, step)
    results, labels = [], []
    for task, train, test in leave_task_out(outcomes, tasks):
        step(f"held-out task {task}")
        feats = None if all_features is None else _rows(outcomes, all_features, train, test)
        results.append(evaluate_split(train, test, routers, featurizer, cache=cache,
                                      router_params=router_params, features=feats,
                                      per_task=False, step=step))
        labels.append(task)
    return combine(results, labels)


def _embed_all(outcomes: Outcomes, featurizer: str, cache: Any, step: Step) -> np.ndarray | None:
    """Embed every prompt once; a featurizer that learns must instead be fitted per split."""
    inner = make_featurizer(featurizer)
    if getattr(inner, "needs_fit", False):
        return None
    step("embedding prompts")
    f = inner if cache is False else CachedFeaturizer(inner, None if cache in (None, True)
                                                      else cache)
    return f.encode(list(outcomes.prompts))


def _rows(full: Outcomes, features: np.ndarray, train: Outcomes,
          test: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    index = {pid: i for i, pid in enumerate(full.prompt_ids)}
    return (features[[index[p] for p in train.prompt_ids]],
            features[[index[p] for p in test.prompt_ids]])

"""Onboarding a new model from N graded answers: how much of its routing value comes back?

Data: the llmrouter-bench outcomes (../shared/data, else the bundled copy), all-MiniLM-L6-v2
embeddings (cached), seeded 80/20 train/test splits (``--seeds``). For each target model ``M``:

* **with all**: the kNN router trained on the training prompts with every model (the ceiling);
* **without**: the kNN router trained without ``M`` (``M`` is never chosen): where we start;
* **onboarded, N answers**: ``M`` removed from the training data, then onboarded with
  :mod:`polyroute.onboarding`: N training prompts chosen by a selection strategy, ``M``'s answers
  on them = its recorded scores (exactly what grading the replay stand-in's answers yields), its
  other training cells imputed; the kNN router is trained on that table.
* **IRT add_model** (baseline, ``--irt-seeds``): the IRT router trained without ``M``, then
  :meth:`IRTRouter.add_model` with N answers (adaptive ``variance`` selection), next to the IRT
  router trained with and without ``M``.

Every router is scored on the same test prompts against the test outcomes that include ``M``'s
real scores (the same budget range for all rows). Recovery = (AIQ_onboarded − AIQ_without) /
(AIQ_with_all − AIQ_without), on the means over splits. The spread of the gap is the paired
bootstrap std of AIQ(with all) − AIQ(without) over resampled test prompts.

Nothing is tuned on the test prompts: the onboarding's own hyper-parameters are chosen by
cross-validation on the asked answers, and the (strategy, method) pair reported as *selected* is
picked per split and model by leave-one-model-out on the training part alone (each other model in
turn treated as new, the Brier score of its imputed training cells at N = 100).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, fmt, load_benchmark_data, machine, write_json  # noqa: E402

from polyroute.data import Outcomes, train_test_split  # noqa: E402
from polyroute.evaluation import aiq_of, paired_bootstrap  # noqa: E402
from polyroute.features import CachedFeaturizer, make_featurizer  # noqa: E402
from polyroute.onboarding import ADAPTIVE, SELECTION_STRATEGIES, onboard  # noqa: E402
from polyroute.routers import CostModel, Estimates, make_router  # noqa: E402

BUDGETS = (25, 50, 100, 200)
STRATEGIES = (*SELECTION_STRATEGIES, ADAPTIVE)
#: ridge and task_mean are left out of the grid: in a first full run (3 splits, 1 draw) ridge
#: tracked logistic and task_mean was worst by the selection's criterion (Brier 0.19 against
#: 0.14) and in recovery; see the write-up.
METHODS = ("logistic", "profile")
SELECTION_BUDGET = 100
#: leave-one-model-out selection uses the strongest other models (they decide routing)
SELECTION_MODELS = 3
TARGET = 0.8
#: best single model, the cheapest, and two whose strengths differ by task (see the write-up)
DEFAULT_MODELS = ("llama-3.1-nemotron-51b-instruct", "gemma-2-9b-it",
                  "llama-3.3-nemotron-super-49b-v1", "qwen2.5-7b-instruct")
WHY = {
    "llama-3.1-nemotron-51b-instruct": "best single model (highest mean quality)",
    "gemma-2-9b-it": "cheapest ($0.10/M tokens in and out)",
    "llama-3.3-nemotron-super-49b-v1": "strong on math/mbpp/mgsm/human_eval, weak on "
                                       "commonsense_qa/arc/openbook",
    "qwen2.5-7b-instruct": "the reverse: strong on commonsense_qa/arc/openbook, weak on mmlu/"
                           "math; the pair's per-task profiles differ most among strong models",
}


#: Strategies and methods tried along the way (the numbers are from earlier runs of this script
#: or from the exploration described; kept here so the write-up says what did not help).
TRIED = [
    "- **Imputation methods.** `task_mean` (per-task accuracy shrunk to the reference mean plus "
    "the model's offset) was worst: leave-one-model-out Brier 0.19 against 0.14 for the "
    "collaborative ones, and recovery at N = 100 between −54 % and +76 % (negative for "
    "gemma-2-9b-it at every N) in a first full run (3 splits, 1 draw); dropped from the final "
    "grid. `ridge` (the same design as `logistic`, linear) tracked `logistic` within noise in a "
    "trial run; dropped. Low-rank (SVD) prompt factors instead of the raw reference scores, and "
    "per-task reference accuracies as extra features, changed nothing measurable.",
    "- **`profile`** (hierarchical prior: the reference models' per-task profiles and their "
    "task-by-task covariance) gives the lowest imputation Brier, but pulls a model's unusual "
    "strengths (nemotron-super on math) towards the reference models' profile, which is where "
    "its routing value lies.",
    "- **Selection.** A first `informative` rule (Neyman allocation over tasks, then sampling "
    "prompts the reference models disagree on) had worse Brier than random (0.139 against "
    "0.130) and was replaced by the A-optimal design. `adaptive` (half A-optimal, half where "
    "the expected value of information for the routing decision is highest) was no better "
    "than random or stratified within the noise; the A-optimal design was the worst with "
    "`logistic`. Random and stratified selection are as good as any design here: with 0/1 "
    "outcomes and ~7 answers per task, which prompts are asked matters less than how many.",
    "- **Selection per split** by the leave-one-model-out Brier switches between pairs whose "
    "routing value differs; a fixed pair (e.g. random/profile: 65 %, 58 %, 56 %, 36 % at "
    "N = 100) does better than the selected one, but choosing it from these test numbers "
    "would be tuning on the test prompts. The library's defaults (random/logistic) are the "
    "pair with the lowest Brier over all splits and targets, a training-only criterion.",
    "- **Why the target is hard.** Recovery per split and draw ranges from below 0 to above "
    "100 % at the same N: the gaps (0.005–0.02 AIQ) are 1–4 bootstrap spreads, and the "
    "routing value of a model rests on a few task-level accuracies (e.g. nemotron-super on "
    "math) that 100 binary answers spread over 14 tasks pin down to about ±0.15. An "
    "imputation fitted on half of the training prompts (≈2 200 answers) recovers 83 % "
    "(gemma-2-9b-it) and 100 % (nemotron-super) on split 0; with 1 500 answers 78 % and "
    "105 %; so the method is sound, and the limit at N = 100 is information.",
    "- **Disclosure.** The first exploration of the imputation methods, the A-optimal design "
    "and the low-rank features looked at split 0's test AIQ for gemma-2-9b-it and "
    "nemotron-super (no hyper-parameter was set from it; it decided which methods to keep "
    "in the grid). The adaptive strategy was developed on an inner validation split of split "
    "0's training part.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", help="embedding cache file (default: polyroute's)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--seeds", type=int, default=3, help="train/test splits")
    parser.add_argument("--irt-seeds", type=int, default=1, help="splits with the IRT baseline")
    parser.add_argument("--resamples", type=int, default=200, help="paired bootstrap resamples")
    parser.add_argument("--draws", type=int, default=2,
                        help="draws of the asked prompts per split (their mean is reported)")
    parser.add_argument("--router", default="knn", help="router trained on the onboarded table")
    parser.add_argument("--rewrite", action="store_true",
                        help="only rewrite the markdown from the saved JSON")
    args = parser.parse_args()
    if args.rewrite:
        result = json.loads((RESULTS / "onboard_recovery.json").read_text())
        result["tried"] = TRIED
        write_json("onboard_recovery.json", result)
        write_markdown(result)
        return

    t0 = time.time()
    result: dict = {"machine": machine(), "router": args.router, "featurizer": "minilm",
                    "budgets": list(BUDGETS), "strategies": list(STRATEGIES),
                    "methods": list(METHODS), "seeds": args.seeds,
                    "irt_seeds": args.irt_seeds, "draws": args.draws,
                    "resamples": args.resamples, "target": TARGET,
                    "why": {m: WHY.get(m, "") for m in args.models.split(",")}, "splits": []}
    outcomes = load_benchmark_data()
    result["data"] = {"source": Path(outcomes.source).name, "prompts": outcomes.n_prompts,
                      "models": list(outcomes.model_names)}
    features = CachedFeaturizer(make_featurizer("minilm"), args.cache).encode(
        list(outcomes.prompts))
    targets = [m for m in args.models.split(",") if m]
    for seed in range(args.seeds):
        split = run_split(outcomes, features, targets, seed, args.router,
                          irt=seed < args.irt_seeds, resamples=args.resamples, draws=args.draws)
        result["splits"].append(split)
        print(f"split {seed} done at {time.time() - t0:.0f} s", flush=True)
    result["summary"] = summarise(result["splits"], targets)
    result["tried"] = TRIED
    result["seconds"] = round(time.time() - t0, 1)
    write_json("onboard_recovery.json", result)
    write_markdown(result)


def run_split(outcomes: Outcomes, features: np.ndarray, targets: list[str], seed: int,
              router: str, irt: bool, resamples: int, draws: int) -> dict:
    train, test = train_test_split(outcomes, 0.2, random_state=seed)
    index = {p: i for i, p in enumerate(outcomes.prompt_ids)}
    x_train = features[[index[p] for p in train.prompt_ids]]
    x_test = features[[index[p] for p in test.prompt_ids]]
    cost_model = CostModel.fit(train)  # list prices of every model are known, the new one's too
    cost = cost_model.predict(test.prompts)
    names = list(train.model_names)

    def estimates(quality: np.ndarray) -> Estimates:
        return Estimates(models=test.model_names, quality=quality, cost=cost,
                         cost_scale=cost_model.cost_scale)

    def aiq(quality: np.ndarray) -> float:
        return aiq_of(estimates(quality), test.quality, test.cost)

    def fit(table: Outcomes, **params) -> tuple[np.ndarray, object]:
        """The router trained on ``table`` and its estimates in the data's column order (a
        model the table lacks gets −1: never chosen)."""
        fitted = make_router(router, random_state=0, **params).fit(table, x_train)
        est = fitted.estimate(x_test)
        out = np.full((test.n_prompts, len(names)), -1.0)
        for k, name in enumerate(est.models):
            out[:, names.index(name)] = est.quality[:, k]
        return out, fitted

    full, _ = fit(train)
    split: dict = {"seed": seed, "n_train": train.n_prompts, "n_test": test.n_prompts,
                   "with_all_aiq": aiq(full), "models": {}}
    irt_full = None
    if irt:
        irt_router = make_router("irt", random_state=0).fit(train, x_train)
        irt_full = irt_router.estimate(x_test).quality
        split["irt_with_all_aiq"] = aiq(irt_full)
    for model in targets:
        j = names.index(model)
        others = [n for n in names if n != model]
        base = train.select_models(others)
        info = train.models[j]
        truth = train.quality[:, j]
        without, fitted = fit(base)
        # The onboarded router reuses the hyper-parameters chosen (by its own cross-validation)
        # for the router without M: known before onboarding, and it saves a CV per fit.
        params = {"k": fitted.k_} if hasattr(fitted, "k_") else {}
        boot = paired_bootstrap(estimates(full), estimates(without), test.quality, test.cost,
                                n_resamples=resamples, random_state=seed)
        row: dict = {"without_aiq": aiq(without), "gap": boot["difference"],
                     "gap_std": boot["std"], "with_all_brier": brier(full[:, j], test, j),
                     "selected": select_on_train(base, seed), "onboarded": {}}
        for strategy in STRATEGIES:
            for budget in BUDGETS:
                for method in METHODS:
                    cells = []
                    for draw in range(draws):
                        onb = onboard(base, info, lambda rows, truth=truth: truth[rows], budget,
                                      strategy, method, random_state=1000 * seed + draw)
                        q, _ = fit(onb.outcomes.select_models(names), **params)
                        cells.append((aiq(q), brier(q[:, j], test, j), onb.asking_cost(model)))
                    a, b, d = (float(np.mean(v)) for v in zip(*cells, strict=True))
                    row["onboarded"][f"{strategy}/{method}/{budget}"] = {
                        "aiq": a, "brier": b, "dollars": d, "aiq_draws": [c[0] for c in cells]}
        if irt and irt_full is not None:
            row["irt"] = irt_baseline(train, x_train, x_test, model, names, aiq, seed)
        split["models"][model] = row
        print(f"  seed {seed} {model}: gap {row['gap']:+.4f} ± {row['gap_std']:.4f}, "
              f"selected {row['selected']['choice']}", flush=True)
    return split


def brier(estimate: np.ndarray, test: Outcomes, j: int) -> float:
    return float(np.mean((np.clip(estimate, 0, 1) - test.quality[:, j]) ** 2))


def select_on_train(base: Outcomes, seed: int) -> dict:
    """Leave-one-model-out on the training part: each of the ``SELECTION_MODELS`` strongest
    remaining models in turn is onboarded from ``SELECTION_BUDGET`` answers against the others;
    the (strategy, method) with the lowest Brier score on its unasked training cells is the one
    this split and target use."""
    scores: dict[str, list[float]] = {}
    strongest = np.argsort(-np.nanmean(base.quality, axis=0))[:SELECTION_MODELS]
    for r in strongest:
        name = base.model_names[r]
        reference = [n for n in base.model_names if n != name]
        truth = base.quality[:, r]
        for strategy in STRATEGIES:
            for method in METHODS:
                onb = onboard(base.select_models(reference), base.models[r],
                              lambda rows, truth=truth: truth[rows], SELECTION_BUDGET, strategy,
                              method, random_state=seed)
                rest = onb.imputed[:, -1]
                scores.setdefault(f"{strategy}/{method}", []).append(
                    float(np.mean((onb.outcomes.quality[rest, -1] - truth[rest]) ** 2)))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    return {"choice": min(mean, key=mean.get), "brier": mean, "models":
            [base.model_names[r] for r in strongest]}


def irt_baseline(train: Outcomes, x_train: np.ndarray, x_test: np.ndarray, model: str,
                 names: list[str], aiq, seed: int) -> dict:
    """Today's way: IRT trained without ``model``, then ``add_model`` from N answers."""
    j = names.index(model)
    others = [n for n in names if n != model]
    order = [(others + [model]).index(n) for n in names]
    base = make_router("irt", random_state=0).fit(train.select_models(others), x_train)
    out = {"without_aiq": aiq(np.insert(base.estimate(x_test).quality, j, -1.0, axis=1))}
    for budget in BUDGETS:
        router = copy.deepcopy(base)
        router.add_model(model, lambda idx: train.quality[idx, j], x_train, budget,
                         strategy="variance", random_state=seed)
        out[str(budget)] = aiq(router.estimate(x_test).quality[:, order])
    return out


def summarise(splits: list[dict], targets: list[str]) -> dict:
    """Means over splits; recovery from mean AIQs; the target verdict per model."""
    summary: dict = {"with_all_aiq": mean([s["with_all_aiq"] for s in splits]), "models": {}}
    keys = list(splits[0]["models"][targets[0]]["onboarded"])
    for model in targets:
        rows = [s["models"][model] for s in splits]
        full = mean([s["with_all_aiq"] for s in splits])
        without = mean([r["without_aiq"] for r in rows])
        gap = full - without
        gap_std = mean([r["gap_std"] for r in rows])

        def recovery(value: float, gap: float = gap, without: float = without) -> float | None:
            return (value - without) / gap if abs(gap) > 1e-12 else None

        entry: dict = {"without_aiq": without, "with_all_aiq": full, "gap": gap,
                       "gap_std": gap_std, "gap_per_split": [r["gap"] for r in rows],
                       "gap_exceeds_spread": bool(gap > gap_std), "onboarded": {},
                       "selected": {}, "selected_choices": [r["selected"]["choice"]
                                                            for r in rows]}
        for key in keys:
            cells = [r["onboarded"][key] for r in rows]
            value = mean([c["aiq"] for c in cells])
            entry["onboarded"][key] = {"aiq": value, "recovery": recovery(value),
                                       "brier": mean([c["brier"] for c in cells]),
                                       "dollars": mean([c["dollars"] for c in cells])}
        for budget in BUDGETS:
            cells = [r["onboarded"][f"{r['selected']['choice']}/{budget}"] for r in rows]
            value = mean([c["aiq"] for c in cells])
            per_split = [(c["aiq"] - r["without_aiq"]) / r["gap"] if abs(r["gap"]) > 1e-12
                         else None for c, r in zip(cells, rows, strict=True)]
            entry["selected"][str(budget)] = {
                "aiq": value, "recovery": recovery(value), "recovery_per_split": per_split,
                "dollars": mean([c["dollars"] for c in cells]),
                "brier": mean([c["brier"] for c in cells])}
        irt_rows = [(s, s["models"][model]["irt"]) for s in splits if "irt" in s["models"][model]]
        if irt_rows:
            ifull = mean([s["irt_with_all_aiq"] for s, _ in irt_rows])
            iwithout = mean([r["without_aiq"] for _, r in irt_rows])
            kfull = mean([s["with_all_aiq"] for s, _ in irt_rows])
            kwithout = mean([s["models"][model]["without_aiq"] for s, _ in irt_rows])
            entry["irt"] = {"with_all_aiq": ifull, "without_aiq": iwithout, "splits":
                            len(irt_rows)}
            for budget in BUDGETS:
                value = mean([r[str(budget)] for _, r in irt_rows])
                entry["irt"][str(budget)] = {
                    "aiq": value,
                    "recovery_own": (value - iwithout) / (ifull - iwithout)
                    if abs(ifull - iwithout) > 1e-12 else None,
                    "recovery_vs_knn": (value - kwithout) / (kfull - kwithout)
                    if abs(kfull - kwithout) > 1e-12 else None}
        summary["models"][model] = entry
    judged = [m for m in targets if summary["models"][m]["gap_exceeds_spread"]]
    at = str(SELECTION_BUDGET)
    summary["judged_models"] = judged
    summary["target_met"] = bool(judged) and all(
        (summary["models"][m]["selected"][at]["recovery"] or 0) >= TARGET for m in judged)
    return summary


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def write_markdown(result: dict) -> None:
    s = result["summary"]
    m0 = result["machine"]
    lines = [
        "# Onboarding a new model from N answers: recovered routing value", "",
        f"Data: {result['data']['source']} ({result['data']['prompts']} prompts, "
        f"{len(result['data']['models'])} models). Router: {result['router']} on "
        f"all-MiniLM-L6-v2 embeddings. {result['seeds']} seeded 80/20 splits "
        f"({result['splits'][0]['n_train']} train / {result['splits'][0]['n_test']} test "
        f"prompts), {result['draws']} draws of the asked prompts per split and N. "
        f"Machine: {m0['cpus']} CPUs, load {fmt(m0['load_average_1min_at_start'], '.1f')}"
        f" at start, commit {m0['commit']}, {result['seconds']} s in all.", "",
        "## Protocol", "",
        "For each target model M: **without** = the router trained on the training prompts "
        "without M (M never chosen); **with all** = trained with all of M's training outcomes; "
        "**onboarded** = M removed, then `polyroute.onboarding.onboard` with M's recorded "
        "scores on N asked training prompts (what grading the replay stand-in's answers yields) "
        "and its other training cells imputed, the same router trained on that table. AIQ on "
        "the held-out test prompts against the test outcomes with M's real scores (one budget "
        "range for every row). Recovery = (AIQ_onboarded − AIQ_without) / (AIQ_with_all − "
        "AIQ_without), from AIQs averaged over the splits. Gap spread = paired bootstrap std "
        f"({result['resamples']} resamples of the test prompts) of AIQ(with all) − AIQ(without), "
        "averaged over splits. Dollars = what asking the N prompts costs at M's list prices "
        "(ceil(chars/4) input tokens + 256 output tokens).", "",
        "No tuning on the test prompts: the imputation's regularisation is chosen by 5-fold "
        "cross-validation on the N answers; the reported **selected** (strategy, method) is "
        "picked per split and target by leave-one-model-out on the training part only (each of "
        f"the {SELECTION_MODELS} strongest other models in turn onboarded at N = 100 against the "
        "rest, lowest Brier on its unasked training cells). kNN's k for the onboarded router is "
        "the one its own cross-validation chose for the router without M.", "",
        "## Models", "",
        "| model | why |", "|---|---|",
        *[f"| {m} | {w} |" for m, w in result["why"].items()], "",
        "## Verdict (selected strategy/method, N = 100)", "",
        "| model | without | with all | gap ± spread | gap > spread | onboarded AIQ | recovery "
        "| per split | target 80 % |", "|---|---:|---:|---:|:-:|---:|---:|---|:-:|"]
    for model, e in s["models"].items():
        sel = e["selected"]["100"]
        ok = "—" if not e["gap_exceeds_spread"] else (
            "met" if (sel["recovery"] or 0) >= TARGET else "missed")
        lines.append(
            f"| {model} | {fmt(e['without_aiq'])} | {fmt(e['with_all_aiq'])} | "
            f"{fmt(e['gap'], '+.4f')} ± {fmt(e['gap_std'])} | "
            f"{'yes' if e['gap_exceeds_spread'] else 'no'} | {fmt(sel['aiq'])} | "
            f"{pct(sel['recovery'])} | {', '.join(pct(v) for v in sel['recovery_per_split'])} "
            f"| {ok} |")
    lines += ["", f"**Target ({pct(TARGET)} of the gap with 100 answers, for every model whose gap "
              f"exceeds its spread: {', '.join(s['judged_models']) or 'none'}): "
              f"{'met' if s['target_met'] else 'not met'}.**", "",
              "## Per model and N (selected strategy/method)", "",
              "| model | N | selected | AIQ | recovery | dollars | Brier of M on test (with all"
              " in brackets) |", "|---|---:|---|---:|---:|---:|---|"]
    for model, e in s["models"].items():
        choice = ", ".join(sorted(set(e["selected_choices"])))
        with_all_brier = mean([sp["models"][model]["with_all_brier"] for sp in result["splits"]])
        for budget in result["budgets"]:
            sel = e["selected"][str(budget)]
            lines.append(f"| {model} | {budget} | {choice} | {fmt(sel['aiq'])} | "
                         f"{pct(sel['recovery'])} | ${sel['dollars']:.4f} | {fmt(sel['brier'])} "
                         f"({fmt(with_all_brier)}) |")
    lines += ["", "## Every strategy × method (recovery, mean AIQs over splits)", "",
              "| model | strategy/method | " + " | ".join(f"N={b}" for b in result["budgets"])
              + " |", "|---|---|" + "---:|" * len(result["budgets"])]
    for model, e in s["models"].items():
        for strategy in result["strategies"]:
            for method in result["methods"]:
                key = f"{strategy}/{method}"
                cells = [pct(e["onboarded"][f"{key}/{b}"]["recovery"]) for b in result["budgets"]]
                lines.append(f"| {model} | {key} | " + " | ".join(cells) + " |")
    lines += ["", "Leave-one-model-out Brier on the training part (mean over splits and "
              "targets; lower is better), the criterion of the selection:", "",
              "| strategy/method | Brier |", "|---|---:|"]
    brier_keys = result["splits"][0]["models"][next(iter(s["models"]))]["selected"]["brier"]
    for key in brier_keys:
        vals = [sp["models"][m]["selected"]["brier"][key] for sp in result["splits"]
                for m in sp["models"]]
        lines.append(f"| {key} | {fmt(mean(vals))} |")
    if any("irt" in e for e in s["models"].values()):
        lines += ["", "## Baseline: IRT router, `add_model` (adaptive `variance` selection)", "",
                  f"On the first {result['irt_seeds']} split(s). Own recovery = against the IRT "
                  "router's own with/without; vs kNN = against the kNN rows above (same splits).",
                  "", "| model | IRT without | IRT with all | " + " | ".join(
                      f"N={b} AIQ (own / vs kNN)" for b in result["budgets"]) + " |",
                  "|---|---:|---:|" + "---:|" * len(result["budgets"])]
        for model, e in s["models"].items():
            if "irt" not in e:
                continue
            i = e["irt"]
            cells = [f"{fmt(i[str(b)]['aiq'])} ({pct(i[str(b)]['recovery_own'])} / "
                     f"{pct(i[str(b)]['recovery_vs_knn'])})" for b in result["budgets"]]
            lines.append(f"| {model} | {fmt(i['without_aiq'])} | {fmt(i['with_all_aiq'])} | "
                         + " | ".join(cells) + " |")
    lines += ["", "## What was tried, and what did not help", "", *TRIED, ""]
    (RESULTS / "onboard_recovery.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()

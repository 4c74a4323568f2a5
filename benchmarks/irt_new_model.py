"""Adding a model: how well a trained IRT router takes in a new model from a few of its answers.

Bundled data, one seeded 80/20 split, all-MiniLM-L6-v2 embeddings (cached). For each held-out
model ``M`` in turn:

* **full**: an IRT router trained on the training prompts with all nine models (the target);
* **without**: the same router trained without ``M`` (``M`` is never chosen): where we start;
* **added, B answers**: the router trained without ``M``, then ``M`` added with
  :meth:`IRTRouter.add_model` after asking ``M`` only ``B`` ∈ {50, 100, 200} training prompts,
  chosen adaptively (``fisher``: D-optimal; ``variance``: largest drop of predicted-quality
  variance over the pool) or at random (mean over ``--seeds`` draws);
* **added, all answers**: ``M`` added from its answers on every training prompt (the ceiling of
  adding a model without retraining the prompt side).

Reported: AIQ of the nine-model router on the test prompts (the same budget range for all rows),
and the Brier score of ``M``'s estimated quality on the test prompts.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, embedded_split, fmt, machine, write_json  # noqa: E402

from polyroute.data import Outcomes  # noqa: E402
from polyroute.evaluation import score_estimates  # noqa: E402
from polyroute.routers import CostModel, Estimates, make_router  # noqa: E402
from polyroute.routers.irt import IRTRouter  # noqa: E402

BUDGETS = (50, 100, 200)
STRATEGIES = ("fisher", "variance", "random")
#: A model "matters for routing" if dropping it costs the retrained router this much AIQ.
MATTERS = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", help="embedding cache file (default: polyroute's)")
    parser.add_argument("--models", default="", help="comma-separated models to hold out "
                        "(default: every model)")
    parser.add_argument("--seeds", type=int, default=3, help="random draws per budget")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    outcomes, train, test, x_train, x_test = embedded_split(args.cache)
    cost_model = CostModel.fit(train)
    cost = cost_model.predict(test.prompts)
    held_out = [m for m in args.models.split(",") if m] or list(outcomes.model_names)

    def aiq(quality: np.ndarray) -> float:
        est = Estimates(models=test.model_names, quality=np.clip(quality, 0, 1), cost=cost,
                        cost_scale=cost_model.cost_scale)
        return score_estimates({"r": est}, test)["routers"]["r"]["aiq"]

    full = make_router("irt", random_state=0).fit(train, x_train).estimate(x_test).quality
    result: dict = {"machine": machine(), "n_train": train.n_prompts, "n_test": test.n_prompts,
                    "budgets": list(BUDGETS), "seeds": args.seeds, "full_aiq": aiq(full),
                    "models": {}}
    for model in held_out:
        row = hold_out(model, train, x_train, x_test, test.quality, full, aiq, args.seeds)
        result["models"][model] = row
        print(f"{model}: " + ", ".join(f"{k}={v:.4f}" for k, v in row.items()), flush=True)
    result["seconds"] = round(time.time() - t0, 1)
    rows = list(result["models"].values())
    result["mean"] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    result["matter"] = [m for m, r in result["models"].items()
                        if r["full_aiq"] - r["without_aiq"] > MATTERS] or list(result["models"])
    result["mean_matter"] = {k: float(np.mean([result["models"][m][k]
                                               for m in result["matter"]])) for k in rows[0]}
    write_json("irt_new_model.json", result)
    write_markdown(result)


def hold_out(model: str, train: Outcomes, x_train: np.ndarray, x_test: np.ndarray,
             test_quality: np.ndarray, full: np.ndarray, aiq: Callable[[np.ndarray], float],
             seeds: int) -> dict[str, float]:
    """Train without ``model``, add it back in every way, score each on the test prompts."""
    names = list(train.model_names)
    j = names.index(model)
    others = [n for n in names if n != model]
    order = [(others + [model]).index(n) for n in names]  # back to the data's column order
    base = make_router("irt", random_state=0).fit(train.select_models(others), x_train)
    truth = test_quality[:, j]

    def score(router: IRTRouter) -> tuple[float, float]:
        q = router.estimate(x_test).quality
        return aiq(q[:, order]), float(np.mean((q[:, -1] - truth) ** 2))

    row = {"full_aiq": aiq(full), "full_brier": float(np.mean((full[:, j] - truth) ** 2)),
           "without_aiq": aiq(np.insert(base.estimate(x_test).quality, j, 0.0, axis=1))}
    router = copy.deepcopy(base)  # quality 0 above: the model is never chosen
    prior_mean, _ = router.ability_prior()
    router._append_model(model, prior_mean)
    row["prior_only_aiq"], row["prior_only_brier"] = score(router)
    router = copy.deepcopy(base)
    router.add_model_from_answers(model, x_train, train.quality[:, j])
    row["all_answers_aiq"], row["all_answers_brier"] = score(router)
    for strategy in STRATEGIES:
        for budget in BUDGETS:
            runs = []
            for seed in range(seeds if strategy == "random" else 1):
                router = copy.deepcopy(base)
                router.add_model(model, lambda idx: train.quality[idx, j], x_train, budget,
                                 strategy=strategy, random_state=seed)
                runs.append(score(router))
            row[f"{strategy}_{budget}_aiq"] = float(np.mean([a for a, _ in runs]))
            row[f"{strategy}_{budget}_brier"] = float(np.mean([b for _, b in runs]))
    return row


def summary_lines(mean: dict[str, float], budgets: list[int]) -> list[str]:
    """One table: AIQ, gap to the retrained router and Brier for every way of adding."""
    full = mean["full_aiq"]
    lines = ["| prompts asked | strategy | AIQ | gap to full | Brier |", "|---|---|---:|---:|---:|",
             f"| all (retrained with the model) | full | {fmt(full)} | 0 | "
             f"{fmt(mean['full_brier'])} |"]

    def row(label: str, strategy: str, key: str) -> str:
        brier = mean.get(f"{key}_brier")
        return (f"| {label} | {strategy} | {fmt(mean[f'{key}_aiq'])} | "
                f"{fmt(mean[f'{key}_aiq'] - full, '+.4f')} | {fmt(brier)} |")

    lines.append(row("all (model added, prompt side frozen)", "—", "all_answers"))
    for budget in budgets:
        lines += [row(str(budget), s, f"{s}_{budget}") for s in STRATEGIES]
    lines.append(row("0 (prior mean ability)", "—", "prior_only"))
    lines.append(row("0 (model never chosen)", "—", "without"))
    return lines


def write_markdown(result: dict) -> None:
    budgets = result["budgets"]
    lines = ["# Adding a new model to a trained IRT router", "",
             f"Bundled data, one 80/20 split ({result['n_train']} train / {result['n_test']} "
             f"test prompts); each model held out in turn, then added from B answers to training "
             f"prompts. AIQ of the 9-model router on the test prompts; Brier = mean squared "
             f"error of the added model's estimated quality on the test prompts (lower is "
             f"better). Random = mean of {result['seeds']} draws. Machine: "
             f"{result['machine']['cpus']} CPUs, commit {result['machine']['commit']}, "
             f"{result['seconds']} s.", "",
             "## Mean over all nine held-out models", "", *summary_lines(result["mean"], budgets),
             "", f"## Mean over the models that matter for routing ({', '.join(result['matter'])})",
             "", f"Those whose removal costs the retrained router more than {MATTERS} AIQ; for "
             "the others, routing barely changes whatever is learned about them.", "",
             *summary_lines(result["mean_matter"], budgets), ""]
    for metric in ("aiq", "brier"):
        lines += [f"## Per held-out model ({metric.upper() if metric == 'aiq' else 'Brier'})",
                  "", "| model | " + " | ".join(f"{s} {b}" for b in budgets for s in STRATEGIES)
                  + " | all answers | full | without |",
                  "|---|" + "---:|" * (3 * len(budgets) + 3)]
        for model, row in result["models"].items():
            cells = [fmt(row[f"{s}_{b}_{metric}"]) for b in budgets for s in STRATEGIES]
            cells += [fmt(row[f"all_answers_{metric}"]), fmt(row[f"full_{metric}"]),
                      fmt(row.get(f"without_{metric}"))]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    path = RESULTS / "irt_new_model.md"
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()

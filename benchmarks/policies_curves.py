"""Policy families: cost–quality hulls and AIQ of the trade-off policy (baseline), cascades and
top-k aggregation on the bundled data, next to the zero router and the oracle.

    python benchmarks/policies_curves.py                 # knn + mlp, 5-fold CV (~2 min on 2 cores)
    python benchmarks/policies_curves.py --routers knn   # knn only

Every policy is scored on recorded outcomes and charged every model it calls: a cascade pays for
each step it ran, a set pays for every member (plus the aggregator, if any). Writes
benchmarks/results/policies_curves.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, fmt, load_benchmark_data, machine, write_json  # noqa: E402

from polyroute.data import Outcomes, kfold, train_test_split  # noqa: E402
from polyroute.evaluation.hull import hull_quality_at, pareto_hull  # noqa: E402
from polyroute.evaluation.metrics import Reference, summarize  # noqa: E402
from polyroute.evaluation.sweep import DEFAULT_LAMBDAS, single_model_points  # noqa: E402
from polyroute.features import CachedFeaturizer, make_featurizer  # noqa: E402
from polyroute.policies import (  # noqa: E402
    CascadePolicy,
    TopKPolicy,
    TradeoffPolicy,
    fit_dependence,
)
from polyroute.routers import CostModel, Estimates, make_router  # noqa: E402

CACHE = None  # polyroute's default embedding cache
THRESHOLDS = np.linspace(0.0, 1.0, 21)
CHAIN_LAMBDAS = (0.0, *np.geomspace(1e-2, 1e2, 12).tolist())
VERIFIER_ACCURACIES = (0.8, 0.9)


# -- policy families: each gives one simulate() closure per operating point ---------------------
Run = Callable[[], tuple[np.ndarray, np.ndarray]]
Family = Callable[[Estimates, Outcomes, dict[str, Any]], list[Run]]


def tradeoff(est: Estimates, test: Outcomes, ctx: dict[str, Any]) -> list[Run]:
    return [partial(_single, TradeoffPolicy(lam), est, test) for lam in DEFAULT_LAMBDAS]


def cascade(skip_hopeless: bool, verifier: float | None = None) -> Family:
    """Cascade over a (threshold × chain λ) grid; ``verifier``: accuracy of a simulated one."""

    def family(est: Estimates, test: Outcomes, ctx: dict[str, Any]) -> list[Run]:
        scores = None if verifier is None else ctx["verifier"][verifier]
        policies = [CascadePolicy(t, lam=lam, max_calls=2, skip_hopeless=skip_hopeless)
                    for t in THRESHOLDS for lam in CHAIN_LAMBDAS]
        return [partial(p.simulate, est, test.quality, test.cost, answer_scores=scores)
                for p in policies]

    return family


def topk(dependence: str, scoring: str = "best", aggregator: str | None = None) -> Family:
    """Top-k over λ; ``scoring``: best member, mean member, or the member a simulated 90 %
    verifier accepts (the best-estimated accepted one; the best-estimated one if none is)."""

    def family(est: Estimates, test: Outcomes, ctx: dict[str, Any]) -> list[Run]:
        dep = ctx["dependence"] if dependence == "fitted" else 0.0
        runs = []
        for lam in DEFAULT_LAMBDAS:
            policy = TopKPolicy(lam, max_k=3, dependence=dep, aggregator=aggregator,
                                offline_quality="mean" if scoring == "mean" else "best")
            if scoring == "verifier":
                runs.append(partial(_verifier_selected, policy, est, test, ctx["verifier"][0.9]))
            else:
                runs.append(partial(policy.simulate, est, test.quality, test.cost))
        return runs

    return family


def _verifier_selected(policy: TopKPolicy, est: Estimates, test: Outcomes,
                       verdict: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chosen = policy.select(est)
    _, paid = policy.simulate(est, test.quality, test.cost)
    key = np.where(chosen, verdict * 2.0 + est.quality, -np.inf)
    return test.quality[np.arange(len(key)), np.argmax(key, axis=1)], paid


FAMILIES: dict[str, Family] = {
    "tradeoff": tradeoff,
    "cascade, router estimate only": cascade(skip_hopeless=True),
    "cascade, naive (always calls the cheap step)": cascade(skip_hopeless=False),
    "cascade + simulated verifier 80% (hypothetical)": cascade(True, 0.8),
    "cascade + simulated verifier 90% (hypothetical)": cascade(True, 0.9),
    "top-k, independence (best member: perfect aggregator)": topk("independent"),
    "top-k, independence (90% verifier picks the member)": topk("independent", "verifier"),
    "top-k, independence (best member, gemma-2-9b aggregator charged)":
        topk("independent", aggregator="gemma-2-9b-it"),
    "top-k, independence (mean member)": topk("independent", "mean"),
    "top-k, fitted dependence (best member: perfect aggregator)": topk("fitted"),
    "top-k, fitted dependence (90% verifier picks the member)": topk("fitted", "verifier"),
}


def run_family(family: Family, est: Estimates, test: Outcomes, ctx: dict[str, Any]) -> np.ndarray:
    points = []
    for run in family(est, test, ctx):
        q, c = run()
        points.append((float(np.nanmean(c)), float(np.nanmean(q))))
    return np.array(points)


def _single(policy: TradeoffPolicy, est: Estimates,
            test: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    pick = policy.choose(est)
    rows = np.arange(len(pick))
    return test.quality[rows, pick], test.cost[rows, pick]


def simulated_verifier(quality: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """1 if the verifier calls the recorded answer good, else 0; right with prob. ``accuracy``."""
    good = quality >= 0.5
    right = np.random.default_rng(seed).random(quality.shape) < accuracy
    return np.where(right, good, ~good).astype(float)


# -- one fold ------------------------------------------------------------------------------------
def estimates_for(router: str, train: Outcomes, test: Outcomes, x_train: np.ndarray,
                  x_test: np.ndarray) -> Estimates:
    cost_model = CostModel.fit(train)
    est = make_router(router).fit(train, x_train).estimate(x_test)
    return est.with_cost(cost_model.predict(test.prompts), cost_model.cost_scale)


def held_out_dependence(router: str, train: Outcomes, x_train: np.ndarray, seed: int) -> float:
    """Fit top-k's dependence on a slice of the training fold the router did not see."""
    index = {p: i for i, p in enumerate(train.prompt_ids)}
    inner_train, inner_val = train_test_split(train, 0.2, seed)
    rows = lambda o: x_train[[index[p] for p in o.prompt_ids]]  # noqa: E731
    est = estimates_for(router, inner_train, inner_val, rows(inner_train), rows(inner_val))
    return fit_dependence(est, inner_val.quality)


def evaluate_fold(router: str, train: Outcomes, test: Outcomes, x_train: np.ndarray,
                  x_test: np.ndarray, seed: int) -> dict[str, Any]:
    est = estimates_for(router, train, test, x_train, x_test)
    singles = single_model_points(test.quality, test.cost)
    ref = Reference.from_single_models(singles, test.model_names)
    ctx = {"dependence": held_out_dependence(router, train, x_train, seed),
           "verifier": {a: simulated_verifier(test.quality, a, seed) for a in VERIFIER_ACCURACIES}}
    oracle_est = Estimates(test.model_names, test.quality, test.cost, None, est.cost_scale)
    out: dict[str, Any] = {"dependence": ctx["dependence"], "reference": vars(ref)}
    curves = {"zero router": singles,
              "oracle": run_family(tradeoff, oracle_est, test, ctx)}
    for name, family in FAMILIES.items():
        curves[name] = run_family(family, est, test, ctx)
    for name, points in curves.items():
        s = summarize(points, ref)
        hull = np.asarray(s["hull"])
        out[name] = {"aiq": s["aiq"], "best_quality": s["best_quality"],
                     "best_quality_cost": s["best_quality_cost"],
                     "quality_at_best_single_cost": float(hull_quality_at(hull,
                                                                          ref.best_single_cost)[0]),
                     "quality_at_half_best_single_cost": float(hull_quality_at(
                         hull, ref.best_single_cost / 2)[0]),
                     "points": points.tolist()}
    return out


# -- reporting -----------------------------------------------------------------------------------
METRICS = ("aiq", "best_quality", "quality_at_best_single_cost", "quality_at_half_best_single_cost")


def combine(folds: list[dict[str, Any]]) -> dict[str, Any]:
    names = [k for k in folds[0] if k not in ("dependence", "reference")]
    out: dict[str, Any] = {"dependence_per_fold": [f["dependence"] for f in folds]}
    for name in names:
        r: dict[str, Any] = {}
        for key in METRICS:
            vals = np.array([f[name][key] for f in folds])
            r[key], r[f"{key}_std"] = float(vals.mean()), float(vals.std())
        diff = np.array([f[name]["aiq"] - f["tradeoff"]["aiq"] for f in folds])
        r["aiq_minus_tradeoff"], r["aiq_minus_tradeoff_std"] = float(diff.mean()), float(diff.std())
        r["aiq_per_fold"] = [f[name]["aiq"] for f in folds]
        r["points"] = np.mean([f[name]["points"] for f in folds], axis=0).tolist()
        out[name] = r
    return out


def table(router: str, res: dict[str, Any]) -> list[str]:
    lines = [f"### {router} router", "",
             "| policy | AIQ | ± std | AIQ − tradeoff (paired) | quality at ½ best-single cost "
             "| quality at best-single cost | best quality |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    order = ["oracle", "zero router", "tradeoff", *[n for n in FAMILIES if n != "tradeoff"]]
    for name in order:
        r = res[name]
        lines.append(f"| {name} | {fmt(r['aiq'])} | {fmt(r['aiq_std'])} | "
                     f"{r['aiq_minus_tradeoff']:+.4f} ± {r['aiq_minus_tradeoff_std']:.4f} | "
                     f"{fmt(r['quality_at_half_best_single_cost'], '.3f')} | "
                     f"{fmt(r['quality_at_best_single_cost'], '.3f')} | "
                     f"{fmt(r['best_quality'], '.3f')} |")
    dep = res["dependence_per_fold"]
    lines += ["", f"Fitted top-k dependence per fold: {', '.join(f'{d:.2f}' for d in dep)} "
              "(0 = independent failures, 1 = the same failures).", ""]
    return lines


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ["oracle", "tradeoff", "cascade, router estimate only",
             "cascade, naive (always calls the cheap step)",
             "cascade + simulated verifier 90% (hypothetical)",
             "top-k, independence (best member: perfect aggregator)",
             "top-k, independence (90% verifier picks the member)",
             "top-k, independence (mean member)"]
    styles = {"oracle": ("k", "--"), "tradeoff": ("tab:blue", "-")}
    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5.5), squeeze=False)
    for ax, (router, res) in zip(axes[0], results.items(), strict=True):
        zero = np.array(res["zero router"]["points"])
        ax.scatter(zero[:, 0] * 1e6, zero[:, 1], c="grey", s=18, label="single models", zorder=3)
        for i, name in enumerate(shown):
            hull = pareto_hull(np.array(res[name]["points"]))
            color, ls = styles.get(name, (f"C{i + 1}", "-" if "top-k" in name else "-."))
            ax.plot(hull[:, 0] * 1e6, hull[:, 1], ls, color=color, lw=1.6,
                    label=f"{name} (AIQ {res[name]['aiq']:.3f})")
        ax.axvline(zero[:, 0].max() * 1e6, color="grey", ls=":", lw=1)
        ax.text(zero[:, 0].max() * 1e6, 0.2, " end of the AIQ budget range", fontsize=7,
                color="grey")
        ax.set_xlabel("mean cost per prompt (micro-dollars)")
        ax.set_ylabel("mean quality")
        ax.set_title(f"{router} router, 5-fold CV (fold-mean points, hull)")
        ax.set_xlim(0, zero[:, 0].max() * 1e6 * 1.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


READING = """## Reading

**Cascade.** With the router's estimate as its only confidence signal a cascade cannot beat the
trade-off policy, and on this data it does not. The estimate exists before the cheap model is
called, so either the cascade skips steps that cannot pass (it then *is* a routing policy: the
cheapest frontier model whose estimate reaches the threshold, the same AIQ as trade-off within
noise) or it calls the cheap model only to throw its answer away (the naive cascade: every such
call is paid for, and it loses about 0.006 AIQ on both routers). A cascade pays off only with
information that arrives with the answer. The simulated-verifier rows measure how much that is
worth here, as an upper bound: the verifier is free (a real self-check or reward model costs a
call), and its mistakes are independent of the models' own. The built-in `HeuristicScorer` only
catches visible failures (empty, refusal, truncated, looping answers); the bundled data holds no
answer texts, so its effect cannot be measured offline.

**Top-k aggregation.** When a set is scored by its best member (a perfect aggregator that always
recognises the right answer), sets of up to three models gain about 0.06 AIQ over trade-off on both
routers: the largest gain in this table, but an upper bound. The gain comes from the price
structure and from models failing on different prompts: three 7–9B calls cost less than one 49–70B
call, and per prompt the best of several cheap models is right much more often than the best single
model (always taking the best of gemma-2-9b, llama-3.1-8b and qwen2.5-7b would score 0.71 for
$2.0e-4 per prompt, against 0.625 for $3.0e-4 from the best single model). Scored by the mean
member (an aggregator that cannot tell answers apart), top-k loses 0.04–0.05 to trade-off, because
it pays for every member. A free verifier that is right 90 % of the time and picks the member keeps
most of the gain (+0.04–0.05), and charging a gemma-2-9b aggregation call costs about 0.01. What a
real aggregator (majority vote, LLM fusion) achieves lies between the mean and the best member and
has to be measured with answers, in the gateway.

**Dependence.** Fitting the dependence between models' failures on held-out training prompts (0 =
independent, 1 = the same failures) gives 0.4–0.95, so independence over-promises what a set adds.
Using the fitted value nevertheless did *not* help: it buys smaller sets, and under best-member
scoring larger sets are rewarded; the fitted value also varies a lot between folds.
"""


def render(payload: dict[str, Any]) -> None:
    """The markdown report and the plot, from the JSON the run wrote."""
    results, info = payload["results"], payload["machine"]
    plot(results, RESULTS / "policies_curves.png")
    md = ["# Policies on the bundled data: trade-off vs cascade vs top-k aggregation", "",
          f"Data: {payload['data']}. Featurizer all-MiniLM-L6-v2; {payload['protocol']}, "
          f"mean ± std over folds; commit {info['commit']}, {info['date']}, "
          f"{payload['seconds']} s.",
          "AIQ = mean hull quality over 201 budgets between the cheapest and priciest single "
          "model. Every model a policy calls is charged its recorded cost. Cascades are swept "
          "over threshold × chain λ (max 2 calls); top-k over λ (max 3 members; no aggregator "
          "cost unless stated). \"Simulated verifier\" rows are hypothetical: a free verifier "
          "that judges each recorded answer right with the stated accuracy. \"AIQ − tradeoff\" "
          "is the per-fold difference (same prompts), mean ± std.", ""]
    for router, res in results.items():
        md += table(router, res)
    md += [READING]
    (RESULTS / "policies_curves.md").write_text("\n".join(md))
    print("\n".join(md))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routers", nargs="+", default=["knn", "mlp"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--report-only", action="store_true",
                        help="re-render the markdown and plot from the last JSON")
    args = parser.parse_args(argv)
    if args.report_only:
        render(json.loads((RESULTS / "policies_curves.json").read_text()))
        return
    info = machine()
    outcomes = load_benchmark_data()
    features = CachedFeaturizer(make_featurizer("minilm"), CACHE).encode(list(outcomes.prompts))
    index = {p: i for i, p in enumerate(outcomes.prompt_ids)}
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for router in args.routers:
        folds = []
        for k, (train, test) in enumerate(kfold(outcomes, args.folds, random_state=0)):
            x_tr = features[[index[p] for p in train.prompt_ids]]
            x_te = features[[index[p] for p in test.prompt_ids]]
            folds.append(evaluate_fold(router, train, test, x_tr, x_te, seed=k))
        results[router] = combine(folds)
    payload = {"machine": info, "data": repr(outcomes), "protocol": f"{args.folds}-fold CV, seed 0",
               "seconds": round(time.perf_counter() - t0, 1), "results": results}
    write_json("policies_curves.json", payload)
    render(payload)


if __name__ == "__main__":
    main()

"""Online learning: the contextual bandit learning from partial feedback, replayed on recorded
outcomes (regret, and held-out AIQ as feedback accumulates).

Bundled data, one seeded 80/20 split, all-MiniLM-L6-v2 embeddings (cached). The training prompts,
shuffled (seeded), arrive one at a time with a trade-off weight λ drawn from ``LAMBDAS``. The
bandit picks one model (:meth:`BanditRouter.select`: UCB or Thompson sampling on the quality, minus
λ × predicted cost), sees *only that model's* recorded quality, is charged its recorded cost and
learns (:meth:`BanditRouter.learn_one`). Its context projection (PCA) is learned beforehand from
the training prompts' embeddings alone (no outcomes), as a gateway would from past traffic.

Reported, averaged over ``--seeds`` stream orders:

* **regret**: cumulative (per-step mean) shortfall of the reward ``quality − λ · cost / scale``
  against the hindsight-best model for that prompt and λ (the oracle), and against the same
  router trained offline with full information on all the training prompts;
* **AIQ on the held-out test prompts** of the bandit's posterior mean after n prompts, next to
  the same router after learning *every* model's outcome on the same n prompts (full
  information), the kNN router with full information on those n prompts, and the zero router and
  oracle.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, embedded_split, fmt, machine, write_json  # noqa: E402

from polyroute.evaluation import score_estimates  # noqa: E402
from polyroute.routers import CostModel, Estimates, make_router  # noqa: E402

#: Trade-off weights drawn per step (cost_scale = the dearest model's mean cost).
LAMBDAS = (0.0, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0)
CHECKPOINTS = (100, 250, 500, 1000, 2000, 3000)
VARIANTS = {"ucb": {"exploration": "ucb"}, "thompson": {"exploration": "thompson"},
            "greedy": {"exploration": "ucb", "alpha": 0.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", help="embedding cache file (default: polyroute's)")
    parser.add_argument("--seeds", type=int, default=3, help="stream orders to average over")
    args = parser.parse_args()
    t0 = time.time()
    outcomes, train, test, x_train, x_test = embedded_split(args.cache)
    cost_model = CostModel.fit(train)
    scale = cost_model.cost_scale
    predicted_train = cost_model.predict(train.prompts)
    predicted_test = cost_model.predict(test.prompts)
    names = train.model_names
    n = train.n_prompts
    checkpoints = [c for c in CHECKPOINTS if c < n] + [n]

    def estimates(quality: np.ndarray) -> Estimates:
        return Estimates(models=names, quality=np.clip(quality, 0, 1), cost=predicted_test,
                         cost_scale=scale)

    def aiq(quality: np.ndarray) -> float:
        return score_estimates({"r": estimates(quality)}, test)["routers"]["r"]["aiq"]

    knn = make_router("knn").fit(train, x_train).estimate(x_test).quality
    refs = score_estimates({"knn": estimates(knn)}, test)  # also the zero router and oracle
    offline = make_router("bandit").start(names, x_train)
    for j, name in enumerate(names):  # full information on every training prompt
        for i in range(n):
            offline.learn_one(x_train[i], name, train.quality[i, j])
    offline_q = offline.estimate(x_train).quality
    result: dict = {"machine": machine(), "n_train": n, "n_test": test.n_prompts,
                    "lambdas": list(LAMBDAS), "checkpoints": checkpoints, "seeds": args.seeds,
                    "zero_router_aiq": refs["zero_router"]["aiq"],
                    "oracle_aiq": refs["oracle"]["aiq"],
                    "offline_full_information_aiq": aiq(offline.estimate(x_test).quality),
                    "knn_all_train_aiq": refs["routers"]["knn"]["aiq"],
                    "variants": {}, "full_information_curve": {}, "knn_curve": {}}

    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    full_curve: list[list[float]] = []
    knn_curve: list[list[float]] = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        lams = rng.choice(LAMBDAS, size=n)
        for variant, params in VARIANTS.items():
            bandit = make_router("bandit", random_state=seed, **params).start(names, x_train)
            regret_oracle = np.empty(n)
            regret_offline = np.empty(n)
            curve = []
            for t, (i, lam) in enumerate(zip(order, lams, strict=True)):
                penalty = lam * train.cost[i] / scale
                reward = train.quality[i] - penalty
                j = bandit.select(x_train[i], lam, predicted_train[i], scale)
                bandit.learn_one(x_train[i], names[j], train.quality[i, j])
                k = int(np.argmax(offline_q[i] - lam * predicted_train[i] / scale))
                regret_oracle[t] = reward.max() - reward[j]
                regret_offline[t] = reward[k] - reward[j]
                if t + 1 in checkpoints:
                    curve.append(aiq(bandit.estimate(x_test).quality))
            runs[variant].append({
                "aiq": curve,
                "regret_vs_oracle": [float(regret_oracle[:c].mean()) for c in checkpoints],
                "regret_vs_offline": [float(regret_offline[:c].mean()) for c in checkpoints],
                "arm_counts": list(bandit.count_)})
        full, knn = [], []
        for c in checkpoints:
            seen = order[:c]
            router = make_router("bandit").start(names, x_train)
            for j, name in enumerate(names):
                for i in seen:
                    router.learn_one(x_train[i], name, train.quality[i, j])
            full.append(aiq(router.estimate(x_test).quality))
            knn.append(aiq(make_router("knn").fit(train.subset(seen), x_train[seen])
                           .estimate(x_test).quality))
        full_curve.append(full)
        knn_curve.append(knn)
        print(f"seed {seed} done ({time.time() - t0:.0f} s)", flush=True)

    for variant, rs in runs.items():
        result["variants"][variant] = {
            key: np.mean([r[key] for r in rs], axis=0).tolist()
            for key in ("aiq", "regret_vs_oracle", "regret_vs_offline", "arm_counts")}
        result["variants"][variant]["aiq_std"] = np.std([r["aiq"] for r in rs], axis=0).tolist()
    result["full_information_curve"] = np.mean(full_curve, axis=0).tolist()
    result["knn_curve"] = np.mean(knn_curve, axis=0).tolist()
    result["seconds"] = round(time.time() - t0, 1)
    write_json("bandit_replay.json", result)
    write_markdown(result)


def write_markdown(result: dict) -> None:
    cps = result["checkpoints"]
    lines = ["# Contextual bandit: learning from partial feedback (replay)", "",
             f"Bundled data, one 80/20 split: {result['n_train']} training prompts streamed "
             f"(shuffled; {result['seeds']} orders, mean shown), {result['n_test']} test prompts. "
             f"λ per step drawn from {result['lambdas']} (cost scale = the dearest model's mean "
             f"cost). Only the chosen model's outcome is revealed. Machine: "
             f"{result['machine']['cpus']} CPUs, commit {result['machine']['commit']}, "
             f"{result['seconds']} s.", "",
             f"References on the test prompts: zero router {fmt(result['zero_router_aiq'])}, "
             f"oracle {fmt(result['oracle_aiq'])}, bandit trained offline with full information "
             f"on all training prompts {fmt(result['offline_full_information_aiq'])}, kNN on all "
             f"training prompts {fmt(result['knn_all_train_aiq'])}.", "",
             "## Test AIQ after n streamed prompts", "",
             "| n | " + " | ".join(f"{v} (partial)" for v in result["variants"])
             + " | full information, same n | kNN, same n |",
             "|---:|" + "---:|" * (len(result["variants"]) + 2)]
    for i, c in enumerate(cps):
        cells = [f"{fmt(v['aiq'][i])} ± {fmt(v['aiq_std'][i], '.3f')}"
                 for v in result["variants"].values()]
        cells += [fmt(result["full_information_curve"][i]), fmt(result["knn_curve"][i])]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "## Mean per-step regret over the first n prompts", "",
              "Reward = quality − λ·cost/scale. *vs oracle*: against the hindsight-best model; "
              "*vs offline*: against the bandit trained offline with full information on all "
              "training prompts (which has seen these prompts' outcomes).", "",
              "| n | " + " | ".join(f"{v} vs oracle | {v} vs offline"
                                    for v in result["variants"]) + " |",
              "|---:|" + "---:|" * (2 * len(result["variants"]))]
    for i, c in enumerate(cps):
        cells = []
        for v in result["variants"].values():
            cells += [fmt(v["regret_vs_oracle"][i]), fmt(v["regret_vs_offline"][i], "+.4f")]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Cumulative regret = n × the mean shown.", ""]
    path = RESULTS / "bandit_replay.md"
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

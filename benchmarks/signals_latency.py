"""How long does each signal take per request? (Issue 12: each must be under 1 ms at p50.)

In-process, no network, stops by itself. Every built-in signal and one of each config-defined
kind (a keyword set with words and a regex; ``domain`` / ``domain.<name>`` over five domains of
ten labelled examples each; the ``router.*`` signals over nine models' estimates) is computed
once for each of up to ``--prompts`` bundled prompts (``polyroute.load_bundled()``), each prompt
as a chat body with a system prompt and the prompt as the user's turn. A signal's time is one
``compute`` call, timed alone (no memo); p50 and p99 are over the prompts, best of three rounds
by p50 (a shared machine only ever slows a round down).

The embedding the domain signal compares is the router's own, computed for the decision anyway,
so it is not timed here; the embeddings used are a TF-IDF featurizer's fitted on the prompts
(the domain signal's cost is one product of the request's vector with the examples' matrix, so
it depends on their dimension, reported below, not on which encoder made them).

Usage::

    python benchmarks/signals_latency.py            # all bundled prompts
    python benchmarks/signals_latency.py --quick    # 300 prompts
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import RESULTS, machine, write_json

from polyroute.data import load_bundled
from polyroute.features import make_featurizer
from polyroute.routers import Estimates
from polyroute.signals import (
    RuleConfig,
    SignalInputs,
    SignalsConfig,
    SignalSet,
    SignalValues,
    compile_rules,
)

#: A budget per signal from the issue: under 1 ms at p50.
BUDGET_MS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=5489)
    parser.add_argument("--quick", action="store_true", help="300 prompts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = 300 if args.quick else args.prompts

    outcomes = load_bundled()
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(outcomes.prompts), size=min(n, len(outcomes.prompts)), replace=False)
    prompts = [outcomes.prompts[i] for i in rows]
    featurizer = make_featurizer("tfidf")
    featurizer.fit(list(outcomes.prompts))
    embeddings = featurizer.encode(prompts)
    tasks = sorted(set(outcomes.tasks))[:5]
    examples = {t: [p for p, task in zip(outcomes.prompts, outcomes.tasks, strict=True)
                    if task == t][:10] for t in tasks}
    config = SignalsConfig.model_validate({
        "keywords": {"code": {"words": ["python", "function", "code review", "javascript",
                                        "compile", "stack trace"],
                              "patterns": [r"\bdef \w+\(", r"```"]}},
        "domains": {_name(t): {"examples": ex, "threshold": 0.5} for t, ex in examples.items()}})
    signals = SignalSet(config, featurizer.encode)
    models = outcomes.model_names
    quality = rng.random((len(prompts), len(models)))
    cost = rng.random((len(prompts), len(models))) * 1e-4

    def inputs(i: int) -> SignalInputs:
        body = {"model": "polyroute-auto", "metadata": {"team": "ml"},
                "messages": [{"role": "system", "content": "You are a careful assistant."},
                             {"role": "user", "content": prompts[i]}]}
        est = Estimates(models=models, quality=quality[i:i + 1], cost=cost[i:i + 1],
                        uncertainty=quality[i:i + 1] / 10)
        return SignalInputs(body=body, text=prompts[i], key_id="client",
                            key_tags=frozenset({"free-tier"}), headers={},
                            embedding=embeddings[i], estimates=est)

    prepared = [inputs(i) for i in range(len(prompts))]
    names = [s for s in signals if not s.startswith("domain.")] + \
        [f"domain.{_name(tasks[0])}", "metadata.team"]
    results = {}
    for name in names:
        signal = signals[name]

        def one(x: SignalInputs, signal=signal) -> float:
            x.shared.clear()  # domain signals share one similarity pass per request
            start = time.perf_counter()
            signal.compute(x)
            return (time.perf_counter() - start) * 1000

        results[name] = {"kind": signal.kind, "needs": signal.needs,
                         **_best_round(lambda: [one(x) for x in prepared])}

    rules = compile_rules([RuleConfig.model_validate(r) for r in [
        {"name": "secrets", "when": {"signal": "text", "op": "matches",
                                     "value": r"(?i)\bpassword\b|sk-\w{20,}"},
         "then": {"block": "no secrets"}},
        {"name": "long", "when": {"signal": "context_tokens", "op": "gt", "value": 8000},
         "then": {"models": [models[0]]}},
        {"name": "code", "when": {"all": [{"signal": "keyword.code"},
                                          {"not": {"signal": "has_images"}}]},
         "then": {"pin": models[1]}},
        {"name": "free", "when": {"any": [{"signal": "key_tags", "op": "contains",
                                           "value": "paid"},
                                          {"signal": "metadata.team", "op": "eq",
                                           "value": "web"}]},
         "then": {"profile": "cheap"}},
        {"name": "domain", "when": {"signal": "domain", "op": "eq", "value": _name(tasks[0])},
         "then": {"pin": models[2]}},
        {"name": "hard", "when": {"signal": "router.best_quality", "op": "lt", "value": 0.2},
         "then": {"pin": models[3]}},
    ]], config)

    def evaluate(x: SignalInputs) -> float:
        x.shared.clear()
        start = time.perf_counter()
        values = SignalValues(signals, x)
        for rule in rules:
            if rule.holds(values):
                break
        return (time.perf_counter() - start) * 1000

    results["(six rules, all signals they read)"] = {
        "kind": "-", "needs": "analysis", **_best_round(lambda: [evaluate(x) for x in prepared])}

    over = [k for k, v in results.items() if v["p50_ms"] >= BUDGET_MS and not k.startswith("(")]
    data = {"machine": machine(), "prompts": len(prompts), "embedding_dim": embeddings.shape[1],
            "domains": len(tasks), "examples_per_domain": 10, "models": len(models),
            "budget_p50_ms": BUDGET_MS, "over_budget": over, "signals": results}
    write_json("signals_latency.json", data)
    _write_md(data)
    print((RESULTS / "signals_latency.md").read_text())


def _name(task: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in task)


def _best_round(run, rounds: int = 3) -> dict[str, float]:
    best = None
    for _ in range(rounds):
        times = np.array(run())
        stats = {"p50_ms": float(np.percentile(times, 50)),
                 "p99_ms": float(np.percentile(times, 99)), "max_ms": float(times.max())}
        if best is None or stats["p50_ms"] < best["p50_ms"]:
            best = stats
    assert best is not None
    return best


def _write_md(data: dict) -> None:
    m = data["machine"]
    lines = [
        "# Signal latency (benchmarks/signals_latency.py)", "",
        f"{data['prompts']} bundled prompts (llmrouter-bench), each as a chat with a system "
        f"prompt; one `compute` per signal per prompt, timed alone; best of three rounds by "
        f"p50. Domains: {data['domains']} × {data['examples_per_domain']} labelled examples, "
        f"embedding dimension {data['embedding_dim']} (TF-IDF; the request's embedding is the "
        f"router's own, not timed here). Router signals over {data['models']} models.", "",
        f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, load "
        f"{m['load_average_1min_at_start']} at start; commit {m['commit']}, {m['date']}.", "",
        "| signal | kind | needs | p50 ms | p99 ms | max ms |", "|---|---|---|---:|---:|---:|"]
    for name, r in data["signals"].items():
        lines.append(f"| `{name}` | {r['kind']} | {r['needs']} | {r['p50_ms']:.4f} | "
                     f"{r['p99_ms']:.4f} | {r['max_ms']:.3f} |")
    over = data["over_budget"]
    lines += ["", f"Budget: under {data['budget_p50_ms']:g} ms at p50 per signal. " +
              ("Every signal is within it." if not over else
               f"Over budget: {', '.join(over)}.")]
    (RESULTS / "signals_latency.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

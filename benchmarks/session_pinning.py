"""Session pinning on simulated multi-turn traffic: cost and quality with and without pins.

Conversations are drawn from the test prompts of a seeded 80/20 split of llmrouter-bench (the
router — kNN on all-MiniLM-L6-v2, the gateway's ``Decider`` — is trained on the other 80 %):
each has ``--turns`` user turns behind a ~2,000-token agent system prompt, every answer 256
tokens (the data's cost convention). Two kinds: ``same_task`` (all turns from one task, a user
working on one kind of problem) and ``mixed`` (each turn from any task: the topic shifts).

Backends are the data's nine models at their list prices, cached input at 10 % of the input
price (OpenAI's and Anthropic's cache reads are 10–50 %; 10 % is the common ratio). Each turn is
billed as a provider would: the conversation so far (the prefix) at the cached price on the
model that served the previous turn (its cache is warm), at the full input price on any other;
the new question and the answer at list prices (the question's recorded cost). Quality is the
recorded outcome of the chosen model on the turn's prompt.

Three ways to serve, each turn's routing text made by ``features.chat_to_text`` as the gateway
makes it, every decision by the gateway's own functions (``Decider.decide_now``,
``conversations.identify``, ``cannot_pay``, ``weigh``, a pin store):

* ``no_pinning`` — every turn routed on its own (the cache is warm only when the router happens
  to pick the same model again);
* ``always_pin`` — the first turn routed, every later turn on that model;
* ``gain_vs_cache`` — the gateway's rule: move at a new user turn only when the estimated gain
  beats the priced cache loss.

Writes ``benchmarks/results/session_pinning.json`` and ``session_pinning.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, machine, split_router, write_json  # noqa: E402

from polyroute.config import BackendConfig, ConversationsConfig  # noqa: E402
from polyroute.conversations import (  # noqa: E402
    CacheLossModel,
    CachePrices,
    MemoryPins,
    cannot_pay,
    identify,
    weigh,
)
from polyroute.features import chat_to_text  # noqa: E402
from polyroute.gateway.routing import Decider  # noqa: E402
from polyroute.policies import TradeoffPolicy  # noqa: E402
from polyroute.store import Candidate, ConversationPin  # noqa: E402

SYSTEM_PROMPT = " ".join([
    "You are a senior assistant working inside a developer's terminal with tools to read files,",
    "run tests and apply patches. Follow the user's instructions exactly; when they are",
    "ambiguous, ask one short question. Prefer small, reviewable changes. Never invent file",
    "contents. Explain what you changed and why in two or three sentences after each change.",
    "Keep secrets out of logs and commits. Do not run commands that delete data without asking.",
] * 18)  # ~8,000 characters ≈ 2,000 tokens
ANSWER = "The answer, worked through step by step. " * 25  # ~1,000 characters ≈ 256 tokens
CACHED_SHARE = 0.10
LAMBDAS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
MODES = ("no_pinning", "always_pin", "gain_vs_cache")


def conversations(test, kind: str, n: int, turns: int, rng: np.random.Generator) -> list[list[int]]:
    """Row indices of each conversation's turns (distinct prompts within a conversation)."""
    by_task: dict[str, list[int]] = {}
    for i, t in enumerate(test.tasks):
        by_task.setdefault(t, []).append(i)
    tasks = [t for t, rows in by_task.items() if len(rows) >= turns]
    out = []
    for _ in range(n):
        if kind == "same_task":
            pool = by_task[tasks[rng.integers(len(tasks))]]
        else:
            pool = list(range(len(test.prompts)))
        out.append([int(i) for i in rng.choice(pool, turns, replace=False)])
    return out


def messages_for(test, rows: list[int], upto: int) -> list[dict[str, Any]]:
    """The chat request of turn ``upto`` (0-based) of a conversation."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for t, r in enumerate(rows[:upto + 1]):
        if t:
            messages.append({"role": "assistant", "content": ANSWER})
        messages.append({"role": "user", "content": test.prompts[r]})
    return messages


async def simulate(mode: str, lam: float, convs: list[list[int]], test, decider: Decider,
             ranked: dict[int, list[tuple[Candidate, ...]]], prices: dict[str, CachePrices],
             cache: CacheLossModel, config: ConversationsConfig) -> dict[str, Any]:
    """Serve every conversation's turns under ``mode``; the bill and the recorded quality."""
    pins = MemoryPins()
    col = {m: j for j, m in enumerate(test.model_names)}
    cost = quality = prefix_cost = 0.0
    moves = warm = turns = embedded = 0
    now = 0.0
    for c, rows in enumerate(convs):
        last: str | None = None
        for t, r in enumerate(rows):
            now += 1.0
            messages = messages_for(test, rows, t)
            conv = identify({"messages": messages}, {}, key_id="bench")
            candidates = ranked[c][t]
            pin = None if conv.lookup is None else await pins.get(conv.lookup, now)
            model = candidates[0].model
            if pin is not None and mode == "always_pin":
                model = pin.model
            elif pin is not None and mode == "gain_vs_cache":
                text = chat_to_text(messages)
                if cannot_pay(pin.model, decider.models, decider.predicted_costs(text),
                              lam=lam, cost_scale=decider.cost_scale,
                              prefix_tokens=conv.prefix_tokens, prices=prices, cache=cache,
                              min_gain=config.min_gain):
                    model = pin.model
                else:
                    embedded += 1
                    model = weigh(pin.model, candidates, lam=lam, cost_scale=decider.cost_scale,
                                  prefix_tokens=conv.prefix_tokens, prices=prices, cache=cache,
                                  min_gain=config.min_gain).model
            if mode != "gain_vs_cache" or pin is None:
                embedded += 1
            if last is not None and model != last:
                moves += 1
            is_warm = last == model
            warm += int(is_warm and t > 0)
            pc = cache.prefix_cost(conv.prefix_tokens, prices[model], warm=is_warm)
            prefix_cost += pc
            cost += pc + float(test.cost[r, col[model]])
            quality += float(test.quality[r, col[model]])
            turns += 1
            last = model
            await pins.put(ConversationPin(
                key=conv.key, conversation_id=conv.id, model=model, key_id="bench",
                profile=None, turns=t + 1, prefix_tokens=conv.prefix_tokens,
                fallbacks=(), estimated_cost=None, created_ts=now, last_ts=now,
                expires_ts=now + config.idle_s))
    later = turns - len(convs)
    return {"total_cost": cost, "mean_quality": quality / turns, "prefix_cost": prefix_cost,
            "moves": moves, "warm_share_of_later_turns": warm / later if later else None,
            "turns_embedded": embedded, "turns": turns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=150)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", help="embedding cache file (default: polyroute's)")
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine()
    outcomes, _, test, pipe = split_router(args.seed, args.cache)
    backends = [BackendConfig(name=m.name, base_url="http://127.0.0.1:9/v1",
                              input_price_per_mtok=m.input_price_per_mtok,
                              output_price_per_mtok=m.output_price_per_mtok,
                              cached_input_price_per_mtok=CACHED_SHARE * m.input_price_per_mtok)
                for m in outcomes.models]
    decider = Decider(pipe, backends)
    config = ConversationsConfig(enabled=True)
    cache = CacheLossModel.from_config(config)
    prices = {b.name: CachePrices.of(b) for b in backends}
    rng = np.random.default_rng(args.seed)
    out: dict[str, Any] = {"machine": info, "seed": args.seed, "turns": args.turns,
                           "conversations_per_kind": args.conversations,
                           "cached_input_share": CACHED_SHARE, "cost_scale": decider.cost_scale,
                           "cache_model": vars(cache), "kinds": {}}
    for kind in ("same_task", "mixed"):
        convs = conversations(test, kind, args.conversations, args.turns, rng)
        texts = [chat_to_text(messages_for(test, rows, t)) for rows in convs
                 for t in range(len(rows))]
        results: dict[str, Any] = {}
        for lam in LAMBDAS:
            flat = decider.decide_now(texts, TradeoffPolicy(lam))  # embeddings cached after λ 0
            ranked, k = {}, 0
            for c, rows in enumerate(convs):
                ranked[c] = flat[k:k + len(rows)]
                k += len(rows)
            results[f"{lam:g}"] = {mode: asyncio.run(simulate(
                mode, lam, convs, test, decider, ranked, prices, cache, config))
                for mode in MODES}
            print(kind, lam, {m: round(r["total_cost"], 4) for m, r in
                              results[f"{lam:g}"].items()}, flush=True)
        out["kinds"][kind] = results
    out["seconds"] = time.perf_counter() - started
    write_json("session_pinning.json", out)
    write_markdown(out)


def write_markdown(out: dict[str, Any]) -> None:
    m = out["machine"]
    lines = ["# Session pinning on simulated multi-turn traffic", "",
             f"{out['conversations_per_kind']} conversations per kind × {out['turns']} user "
             f"turns, drawn from the llmrouter-bench test split (seed {out['seed']}); ~2,000-"
             f"token system prompt, 256-token answers; cached input at "
             f"{out['cached_input_share']:.0%} of the input price; cache model "
             f"{out['cache_model']}; cost_scale ${out['cost_scale']:.6f}. Load average at start "
             f"{m['load_average_1min_at_start']} on {m['cpus']} CPUs; {out['seconds']:.0f} s. "
             f"Made by `benchmarks/session_pinning.py`.", "",
             "Per λ (the trade-off policy's weight): total dollars of all turns, mean recorded "
             "quality, model switches within conversations, share of later turns served on a "
             "warm cache, turns the router had to embed.", ""]
    for kind, results in out["kinds"].items():
        lines += [f"## {kind}", "",
                  "| λ | mode | total cost $ | mean quality | moves | warm share | embedded |",
                  "|---:|---|---:|---:|---:|---:|---:|"]
        for lam, modes in results.items():
            for mode, r in modes.items():
                lines.append(f"| {lam} | {mode} | {r['total_cost']:.4f} | "
                             f"{r['mean_quality']:.4f} | {r['moves']} | "
                             f"{r['warm_share_of_later_turns']:.2f} | {r['turns_embedded']} |")
        lines.append("")
    (RESULTS / "session_pinning.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()

"""Which routing text of a multi-turn or few-shot-prefixed request routes it like its question.

The router (kNN on all-MiniLM-L6-v2, trained on single prompts of a seeded 80 % split of the
llmrouter-bench data) is asked about test prompts dressed up as chat requests:

* ``single`` — the prompt alone, as one user turn (the reference);
* ``system`` — behind a long system prompt (~3,000 characters of agent instructions);
* ``multi_turn`` — the prompt as the third user turn, after two earlier turns drawn from other
  test prompts (each with its reference answer as the assistant turn), behind the system prompt;
* ``few_shot_chat`` — five solved examples of the same task (other training prompts and their
  references) as user/assistant turns before it;
* ``few_shot_inline`` — the RouterBench-style trap: those five examples written into the *same*
  user message, before the question;
* ``follow_up`` — the prompt, an answer, then a short follow-up ("Are you sure? Check it once
  more.") as the latest turn: scored on the prompt's outcomes, the case earlier context is for.

Each windowing strategy turns the messages into the routing text the encoder sees (it truncates
at 256 word pieces; the featurizer keeps ~1,000 characters, a short head and a long tail). For
each (variant, strategy): the router's AIQ on the recorded outcomes of the *question* (the
recorded cost of answering it, so only the routing differs), the agreement of its λ = 0 choice
with the single-prompt routing, and the mean cosine similarity of the embedding to the single
prompt's.

Writes ``benchmarks/results/routing_window.json`` and ``routing_window.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, SHARED_DATA, machine, split_router, write_json  # noqa: E402

from polyroute.evaluation.bootstrap import aiq_of  # noqa: E402
from polyroute.features import chat_to_text  # noqa: E402
from polyroute.features.text import (  # noqa: E402
    DEFAULT_CONTEXT_CHARS,
    DEFAULT_MAX_CHARS,
    _content_text,
)
from polyroute.policies import TradeoffPolicy  # noqa: E402

SYSTEM_PROMPT = " ".join([
    "You are a senior software engineering assistant working inside a developer's terminal.",
    "Follow the user's instructions exactly; when they are ambiguous, ask one short question.",
    "Prefer small, reviewable changes. Never invent file contents: read files before editing.",
    "Use the tools provided to inspect the repository, run tests and apply patches.",
    "Explain what you changed and why in two or three sentences after each change.",
    "Keep secrets out of logs and commits. Do not run commands that delete data without asking.",
    "When a test fails, read its output carefully before changing code, and fix the cause.",
    "Write code in the style of the surrounding project: naming, typing, docstrings, layout.",
] * 3)

Strategy = Callable[[list[dict[str, Any]]], str]


def _user_texts(messages: Sequence[dict[str, Any]]) -> list[str]:
    return [_content_text(m["content"]) for m in messages if m.get("role") == "user"]


def everything(messages: list[dict[str, Any]]) -> str:
    """Every message's text, system prompt included (what a naive gateway embeds)."""
    return "\n".join(_content_text(m["content"]) for m in messages
                     if isinstance(m.get("content"), (str, list)))


def last_two_users(messages: list[dict[str, Any]]) -> str:
    """polyroute before this change: the last two user turns joined (then head + tail)."""
    return "\n".join(_user_texts(messages)[-2:])


def latest_user(messages: list[dict[str, Any]]) -> str:
    """The latest user turn only."""
    texts = _user_texts(messages)
    return texts[-1] if texts else ""


def latest_tail(messages: list[dict[str, Any]]) -> str:
    """The latest user turn's last window of characters (no head at all)."""
    return latest_user(messages)[-DEFAULT_MAX_CHARS:]


STRATEGIES: dict[str, Strategy] = {
    "everything": everything,
    "last_two_users": last_two_users,
    "latest_user": latest_user,
    "latest_tail": latest_tail,
    # The latest user turn after the end of the earlier user turns, at most this many
    # characters of them (and never so many that the latest turn leaves the window).
    "context_250": lambda m: chat_to_text(m, context_chars=250),
    "context_500": lambda m: chat_to_text(m, context_chars=500),
    "context_fill": lambda m: chat_to_text(m, context_chars=DEFAULT_MAX_CHARS),
    # The gateway's routing text (features.chat_to_text as body.py calls it).
    "gateway": chat_to_text,
}
#: Short follow-ups that only make sense with the question before them.
FOLLOW_UPS = ("Can you answer that again, more carefully?", "Are you sure? Check it once more.",
              "Please explain your answer step by step.", "Answer the question above again.")


def few_shot_block(examples: Sequence[tuple[str, str]]) -> str:
    parts = [f"{q}\nAnswer: {a}" for q, a in examples]
    return "The following are solved examples.\n\n" + "\n\n".join(parts)


def variants(prompt: str, task: str, rng: np.random.Generator, others: Sequence[tuple[str, str]],
             shots: dict[str, list[tuple[str, str]]]) -> dict[str, list[dict[str, Any]]]:
    """The chat requests one test prompt is dressed up as."""
    earlier = [others[i] for i in rng.choice(len(others), 2, replace=False)]
    pool = shots.get(task, [])
    picked = [pool[i] for i in rng.choice(len(pool), min(5, len(pool)), replace=False)] \
        if pool else []
    system = {"role": "system", "content": SYSTEM_PROMPT}
    multi = [system]
    for q, a in earlier:
        multi += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    chat_shots = [system]
    for q, a in picked:
        chat_shots += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return {
        "single": [{"role": "user", "content": prompt}],
        "system": [system, {"role": "user", "content": prompt}],
        "multi_turn": [*multi, {"role": "user", "content": prompt}],
        "few_shot_chat": [*chat_shots, {"role": "user", "content": prompt}],
        "few_shot_inline": [{"role": "user",
                             "content": f"{few_shot_block(picked)}\n\n{prompt}"}],
        "follow_up": [system, {"role": "user", "content": prompt},
                      {"role": "assistant", "content": "Here is my answer."},
                      {"role": "user", "content": FOLLOW_UPS[rng.integers(len(FOLLOW_UPS))]}],
    }


def load_answers() -> dict[str, str]:
    """prompt_id → its reference answer (a choice label, a number, a text), for few-shot turns."""
    path = SHARED_DATA / "references.jsonl"
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            gt = r.get("ground_truth")
            out[r["prompt_id"]] = gt if isinstance(gt, str) else json.dumps(gt)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=500, help="test prompts used")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", help="embedding cache file (default: polyroute's)")
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine()
    _, train, test, pipe = split_router(args.seed, args.cache)
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(test.prompts), min(args.prompts, len(test.prompts)),
                              replace=False))
    test = test.subset(rows)
    answers = load_answers()
    shots: dict[str, list[tuple[str, str]]] = {}
    for pid, text, task in zip(train.prompt_ids, train.prompts, train.tasks, strict=True):
        if pid in answers and len(text) < 1500:
            shots.setdefault(task, []).append((text, answers[pid]))
    others = [(t, answers.get(p, "I am not sure.")) for p, t in
              zip(test.prompt_ids, test.prompts, strict=True)]

    print(f"router fitted in {time.perf_counter() - started:.0f} s", flush=True)
    chats = [variants(p, t, rng, [o for o in others if o[0] != p], shots)
             for p, t in zip(test.prompts, test.tasks, strict=True)]
    names = list(chats[0])
    texts = {(v, s): [STRATEGIES[s](c[v]) for c in chats] for v in names for s in STRATEGIES}
    unique = sorted({t for ts in texts.values() for t in ts})
    print(f"embedding {len(unique)} distinct routing texts", flush=True)
    t0 = time.perf_counter()
    emb = np.asarray(pipe.featurizer.encode(unique))
    embed_s = time.perf_counter() - t0
    index = {t: i for i, t in enumerate(unique)}

    def features(key: tuple[str, str]) -> np.ndarray:
        return emb[[index[t] for t in texts[key]]]

    reference = features(("single", "gateway"))
    ref_est = pipe.estimate(texts[("single", "gateway")], features=reference)
    ref_choice = TradeoffPolicy(0.0).choose(ref_est)
    results: dict[str, dict[str, Any]] = {}
    for v in names:
        results[v] = {}
        for s in STRATEGIES:
            x = features((v, s))
            est = pipe.estimate(texts[(v, s)], features=x)
            cos = np.sum(x * reference, axis=1) / (np.linalg.norm(x, axis=1)
                                                   * np.linalg.norm(reference, axis=1))
            results[v][s] = {
                "aiq": aiq_of(est, test.quality, test.cost),
                "agreement_at_lam0": float(np.mean(TradeoffPolicy(0.0).choose(est)
                                                   == ref_choice)),
                "cosine_to_single": float(np.mean(cos)),
                "mean_chars": float(np.mean([len(t) for t in texts[(v, s)]]))}
    from polyroute.evaluation.runner import score_estimates

    scored = score_estimates({"knn": ref_est}, test)
    out = {"machine": info, "prompts": len(test.prompts), "seed": args.seed,
           "router": "knn on minilm, trained on the 80 % split's single prompts",
           "embed_seconds": embed_s, "texts_embedded": len(unique),
           "zero_router_aiq": scored["zero_router"]["aiq"], "oracle_aiq": scored["oracle"]["aiq"],
           "results": results, "seconds": time.perf_counter() - started}
    write_json("routing_window.json", out)
    write_markdown(out)
    print(f"done in {out['seconds']:.0f} s")


def write_markdown(out: dict[str, Any]) -> None:
    res = out["results"]
    strategies = list(next(iter(res.values())))
    lines = ["# Routing text of multi-turn and few-shot-prefixed requests", "",
             f"{out['prompts']} test prompts of llmrouter-bench (seed {out['seed']}); router: "
             f"{out['router']}. Zero router AIQ {out['zero_router_aiq']:.4f}, oracle "
             f"{out['oracle_aiq']:.4f}. Load average at start "
             f"{out['machine']['load_average_1min_at_start']}, {out['machine']['cpus']} CPUs; "
             f"{out['texts_embedded']} texts embedded in {out['embed_seconds']:.0f} s. "
             f"Made by `benchmarks/routing_window.py`.", "",
             "Strategies: `everything` (every message, system included), `last_two_users` "
             "(polyroute before this change), `latest_user`, `latest_tail` (the latest user "
             "turn's last 1,000 characters), `context_N` (the latest user turn whole after the "
             "last N characters of the earlier user turns, fewer if the latest turn would "
             "leave the 1,000-character window; `fill`: as many as fit), `gateway` "
             f"(`features.chat_to_text` as the gateway calls it: N = "
             f"{DEFAULT_CONTEXT_CHARS}). The featurizer then keeps a head and tail of ~1,000 "
             "characters of whatever it gets.",
             ""]
    for metric, title in [("aiq", "AIQ (higher is better)"),
                          ("agreement_at_lam0", "Agreement with single-prompt routing at λ = 0"),
                          ("cosine_to_single", "Mean cosine similarity to the single prompt's "
                                               "embedding")]:
        lines += [f"## {title}", "", "| variant | " + " | ".join(strategies) + " |",
                  "|---|" + "---:|" * len(strategies)]
        for v, row in res.items():
            best = max(row[s][metric] for s in strategies)
            cells = [f"**{row[s][metric]:.4f}**" if row[s][metric] == best
                     else f"{row[s][metric]:.4f}" for s in strategies]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines.append("")
    (RESULTS / "routing_window.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()

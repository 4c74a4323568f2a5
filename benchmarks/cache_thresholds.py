"""The semantic cache's hit / false-hit curve: where should the similarity threshold be?

Data: ``--n`` prompts (seeded sample, default 600) of the bundled llmrouter-bench prompts, at most
``--max-chars`` long (the short questions a cache serves; long few-shot prompts rarely repeat).
From each prompt:

* **a paraphrase** (should hit): no paraphrase model is available offline, so these are
  *deterministic meaning-preserving rewrites*, two per prompt chosen with the seed among those
  that apply: a polite prefix ("Please answer: ", "Question: ", "Quick question - "), a change of
  case / final punctuation / whitespace, synonyms from a small hand-written table ("What is" →
  "What's", "How many" → "What number of", "calculate" → "compute", …), and a reorder that puts
  the final question first and the context after it. They are easier than human paraphrases
  (the words mostly stay), so the hit rates below are an upper bound for real rephrasings.
* **a near-miss** (should not hit): the same words, a different question. A prompt with numbers
  gets one number changed (seeded: +1..+9, or ×2 for a number ≥ 10); one without gets one proper
  noun (a capitalised word not starting a sentence) swapped for another from a fixed list of
  names, places and countries. A name swap in a word problem may leave the answer unchanged; it
  is counted as a false hit anyway (the cache cannot know).

All texts are embedded with all-MiniLM-L6-v2 (``make_featurizer("minilm")``, cached). Every
original is put into one :class:`~polyroute.cache.SemanticCache` partition (the real lookup code),
then every paraphrase and near-miss is looked up, at each threshold:

* hit rate: paraphrases answered with *their own* original's answer;
* wrong-answer rate: paraphrases answered with another prompt's answer;
* false-hit rate: near-misses answered at all.

With and without the literal guard (a semantic match must have the cached prompt's numbers and
names). The default threshold maximises, on the guarded curve, hit rate − ``--false-weight`` ×
false-hit rate (default 2: a wrong cached answer is counted twice as bad as a call not saved).
A plain cap on the false-hit rate cannot be met: one word turned into its opposite moves a
MiniLM embedding less than most paraphrases do, so those false hits stay at every threshold.

    python benchmarks/cache_thresholds.py    # → benchmarks/results/cache_thresholds.{md,json}
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import RESULTS, machine, write_json  # noqa: E402

from polyroute import load_bundled  # noqa: E402
from polyroute.cache import CacheKey, SemanticCache  # noqa: E402
from polyroute.config import CacheConfig  # noqa: E402
from polyroute.features import make_featurizer, with_cache  # noqa: E402

THRESHOLDS = [round(t, 3) for t in np.arange(0.70, 0.995, 0.01)] + [0.995]

_SYNONYMS = [("What is", "What's"), ("what is", "what's"), ("How many", "What number of"),
             ("how many", "what number of"), ("calculate", "compute"), ("Calculate", "Compute"),
             ("find", "determine"), ("Find", "Determine"), ("largest", "biggest"),
             ("smallest", "tiniest"), ("buy", "purchase"), ("bought", "purchased"),
             ("total", "overall"), ("begin", "start"), ("Which", "What"), ("quickly", "fast"),
             ("Write", "Create"), ("write", "create"), ("usually", "typically"),
             ("often", "frequently"), ("big", "large"), ("show", "demonstrate"),
             ("answer", "reply"), ("choose", "pick"), ("Choose", "Pick")]
_PREFIXES = ("Please answer: ", "Question: ", "Quick question - ", "I'd like to know: ")
_NAMES = ("Maria", "Ahmed", "Tokyo", "Brazil", "Lincoln", "Everest", "Paris", "Kenya", "Newton",
          "Sophia", "Chicago", "Norway", "Einstein", "Lisbon", "Priya", "Canada")
_OPPOSITES = [("largest", "smallest"), ("more", "fewer"), ("maximum", "minimum"),
              ("increase", "decrease"), ("before", "after"), ("above", "below"),
              ("longest", "shortest"), ("first", "last"), ("highest", "lowest"),
              ("add", "subtract"), ("older", "younger"), ("faster", "slower"), ("least", "most"),
              ("correct", "incorrect"), ("positive", "negative"), ("north", "south"),
              ("east", "west"), ("hot", "cold"), ("true", "false"), ("greater", "less"),
              ("always", "never"), ("best", "worst"), ("buy", "sell"), ("win", "lose"),
              ("cause", "prevent"), ("earliest", "latest"), ("inside", "outside"),
              ("odd", "even"), ("sum", "product"), ("area", "perimeter")]
_OPPOSITE = {**dict(_OPPOSITES), **{b: a for a, b in _OPPOSITES}}
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_PROPER = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]{2,}")


# -- rewrites ------------------------------------------------------------------------------------
def _prefix(text: str, rng: random.Random) -> str | None:
    return rng.choice(_PREFIXES) + text[0].lower() + text[1:] if text[:1].isupper() else \
        rng.choice(_PREFIXES) + text


def _surface(text: str, rng: random.Random) -> str | None:
    out = text.rstrip()
    out = out[:-1] if out[-1:] in ".?!" else out + "?"
    out = out.lower() if rng.random() < 0.5 else out
    return "  " + re.sub(r" ", "  ", out, count=2) + " "


def _synonyms(text: str, rng: random.Random) -> str | None:
    found = [(a, b) for a, b in _SYNONYMS if re.search(rf"\b{re.escape(a)}\b", text)]
    if not found:
        return None
    a, b = rng.choice(found)
    return re.sub(rf"\b{re.escape(a)}\b", b, text)


def _reorder(text: str, rng: random.Random) -> str | None:
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    if len(sentences) < 2 or not sentences[-1].endswith("?"):
        return None
    return f"{sentences[-1]} Context: {' '.join(sentences[:-1])}"


_REWRITES = {"prefix": _prefix, "surface": _surface, "synonyms": _synonyms,
             "reorder": _reorder}


def paraphrase(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """Two meaning-preserving rewrites (those that apply), in a seeded order."""
    names = list(_REWRITES)
    rng.shuffle(names)
    used = []
    for name in names:
        out = _REWRITES[name](text, rng)
        if out is not None and out != text:
            text, used = out, used + [name]
        if len(used) == 2:
            break
    return text, used


def near_miss(text: str, rng: random.Random) -> tuple[str, str] | None:
    """The same words asking something else: a number changed, else a proper noun swapped."""
    numbers = list(_NUMBER.finditer(text))
    if numbers:
        m = rng.choice(numbers)
        value = float(m.group())
        new = value * 2 if value >= 10 and rng.random() < 0.5 else value + rng.randint(1, 9)
        new_text = f"{new:g}" if "." in m.group() else str(int(new))
        return text[:m.start()] + new_text + text[m.end():], "number"
    names = [m for m in _PROPER.finditer(text) if m.group() not in _NAMES]
    if names:
        m = rng.choice(names)
        return text[:m.start()] + rng.choice(_NAMES) + text[m.end():], "name"
    return None


def opposite(text: str, rng: random.Random) -> str | None:
    """The same words with one word turned into its opposite (numbers and names untouched):
    the near-miss the literal guard cannot see, left to the threshold."""
    found = [m for m in re.finditer(r"[A-Za-z]+", text) if m.group().lower() in _OPPOSITE]
    if not found:
        return None
    m = rng.choice(found)
    word = _OPPOSITE[m.group().lower()]
    word = word.capitalize() if m.group()[0].isupper() else word
    return text[:m.start()] + word + text[m.end():]


# -- the measurement -----------------------------------------------------------------------------
def curve(originals: np.ndarray, texts: list[str], para: np.ndarray, para_texts: list[str],
          near: np.ndarray, near_texts: list[str], near_kinds: list[str],
          guard: bool) -> list[dict]:
    """Per threshold: paraphrases answered with their own original's answer (hit rate) or
    another's (wrong answer), near-misses answered at all (false hits), overall and by kind."""
    rows = []
    kinds = sorted(set(near_kinds))
    key = CacheKey("all", "default", "")  # one partition; entries differ by their exact id
    for t in THRESHOLDS:
        config = CacheConfig(enabled=True, literal_guard=guard,
                             categories={"default": {"threshold": t, "max_entries": 10**6}})
        cache = SemanticCache(config)
        for i, (text, vec) in enumerate(zip(texts, originals, strict=True)):
            cache.put(CacheKey("all", "default", f"prompt {i}"), text, vec, str(i).encode(),
                      model="m", cost=0.0)
        right = wrong = 0
        for i, (text, vec) in enumerate(zip(para_texts, para, strict=True)):
            hit = cache.nearest(key, text, vec)
            if hit is not None:
                right += hit.answer == str(i).encode()
                wrong += hit.answer != str(i).encode()
        false = np.array([cache.nearest(key, text, vec) is not None
                          for text, vec in zip(near_texts, near, strict=True)])
        by_kind = {k: float(np.mean([f for f, kk in zip(false, near_kinds, strict=True)
                                     if kk == k])) for k in kinds}
        rows.append({"threshold": t, "hit_rate": right / len(para_texts),
                     "wrong_answer_rate": wrong / len(para_texts),
                     "false_hit_rate": float(np.mean(false)), "false_hit_rate_by_kind": by_kind})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--max-chars", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--false-weight", type=float, default=2.0)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    prompts = sorted({p.strip() for p in load_bundled().prompts
                      if 20 <= len(p.strip()) <= args.max_chars})
    rng.shuffle(prompts)
    originals, paras, nears, kinds, rewrites = [], [], [], [], {}
    for p in prompts:
        miss = near_miss(p, rng)
        if miss is None:
            continue
        para, used = paraphrase(p, rng)
        if not used:
            continue
        originals.append(p)
        paras.append(para)
        nears.append(miss[0])
        kinds.append(miss[1])
        flipped = opposite(p, rng)
        if flipped is not None:
            nears.append(flipped)
            kinds.append("opposite")
        for name in used:
            rewrites[name] = rewrites.get(name, 0) + 1
        if len(originals) == args.n:
            break
    featurizer = with_cache(make_featurizer("minilm"))
    vec = featurizer.encode(originals + paras + nears)
    n = len(originals)
    x_orig, x_para, x_near = vec[:n], vec[n:2 * n], vec[2 * n:]
    pair_para = np.sum(x_orig * x_para, axis=1)
    curves = {("with_guard" if guard else "no_guard"):
              curve(x_orig, originals, x_para, paras, x_near, nears, kinds, guard)
              for guard in (False, True)}
    def score(row: dict) -> tuple[float, float]:  # ties: the higher (safer) threshold
        return row["hit_rate"] - args.false_weight * row["false_hit_rate"], row["threshold"]

    chosen = max(curves["with_guard"], key=score)
    chosen_plain = max(curves["no_guard"], key=score)
    result = {
        "machine": machine(), "seconds": time.perf_counter() - started,
        "settings": vars(args), "pairs": n, "near_miss_kinds":
            {k: kinds.count(k) for k in ("number", "name", "opposite")},
        "rewrites_used": rewrites,
        "paraphrase_similarity": {"median": float(np.median(pair_para)),
                                  "p05": float(np.percentile(pair_para, 5))},
        "curves": curves, "chosen": chosen, "chosen_without_guard": chosen_plain,
        "examples": [{"original": originals[i], "paraphrase": paras[i]} for i in range(3)]
        + [{"near_miss": nears[i], "kind": kinds[i]} for i in range(8)],
    }
    write_json("cache_thresholds.json", result)
    (RESULTS / "cache_thresholds.md").write_text(_markdown(result))
    print((RESULTS / "cache_thresholds.md").read_text())
    return 0


def _markdown(r: dict) -> str:
    s, k = r["settings"], r["near_miss_kinds"]
    plain, guard = r["curves"]["no_guard"], r["curves"]["with_guard"]
    lines = [
        "# Semantic cache: hit / false-hit curve vs similarity threshold",
        "",
        f"Generated by `benchmarks/cache_thresholds.py` (seed {s['seed']}, {r['pairs']} prompts "
        f"of ≤ {s['max_chars']} characters from the bundled llmrouter-bench prompts, "
        f"all-MiniLM-L6-v2 embeddings; {r['seconds']:.0f} s on {r['machine']['cpus']} CPUs, "
        f"commit {r['machine']['commit']}).",
        "",
        "Every prompt is cached (one partition, the real `SemanticCache.nearest` lookup, so a "
        "paraphrase can also land on a *wrong* prompt). Its **paraphrase** should get its "
        "answer: two deterministic meaning-preserving rewrites (polite prefix; case, final "
        "punctuation, whitespace; a hand-written synonym table; question first, context after) "
        f"— easier than human paraphrases, so the hit rates are an upper bound (paraphrase "
        f"cosine median {r['paraphrase_similarity']['median']:.3f}, 5th percentile "
        f"{r['paraphrase_similarity']['p05']:.3f}). Its **near-misses** should get nothing: one "
        f"number changed ({k['number']}), or, in a prompt without numbers, one proper noun "
        f"swapped ({k['name']}); and one word turned into its opposite from a hand-written table "
        f"(largest/smallest, before/after, … — {k['opposite']}), which keeps every number and "
        "name and so is left to the threshold.",
        "",
        "Hit = paraphrase answered with its own prompt's answer; wrong = with another prompt's; "
        "false hit = a near-miss answered at all. *Guard* = the literal guard (on by default): "
        "a semantic match must have the cached prompt's numbers and names.",
        "",
        "| threshold | hit | wrong | false hits | numbers | names | opposites "
        "| hit (guard) | false hits (guard) | opposites (guard) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in zip(plain, guard, strict=True):
        if round(a["threshold"] * 100) % 2 and a["threshold"] < 0.99:
            continue  # every other row keeps the table short; the JSON has all
        kk, gk = a["false_hit_rate_by_kind"], b["false_hit_rate_by_kind"]
        lines.append(f"| {a['threshold']:.3f} | {a['hit_rate']:.1%} | "
                     f"{a['wrong_answer_rate']:.1%} | {a['false_hit_rate']:.1%} | "
                     f"{kk.get('number', 0):.1%} | {kk.get('name', 0):.1%} | "
                     f"{kk.get('opposite', 0):.1%} | {b['hit_rate']:.1%} | "
                     f"{b['false_hit_rate']:.1%} | {gk.get('opposite', 0):.1%} |")
    c, cp = r["chosen"], r["chosen_without_guard"]
    w, ck = s["false_weight"], c["false_hit_rate_by_kind"]
    opp = [row["false_hit_rate_by_kind"].get("opposite", 0) for row in guard]
    lines += ["", "## The default threshold", "",
              f"Rule: maximise hit rate − {w:g} × false-hit rate (a wrong cached answer counts "
              f"{w:g}× a call not saved). With the guard: **{c['threshold']:.2f}** — paraphrase "
              f"hit rate {c['hit_rate']:.1%}, false hits {c['false_hit_rate']:.1%} (numbers "
              f"{ck.get('number', 0):.1%}, names {ck.get('name', 0):.1%}, opposites "
              f"{ck.get('opposite', 0):.1%}), wrong answers {c['wrong_answer_rate']:.1%}. "
              f"The score is nearly flat from 0.70 to 0.90 (the guarded hit rate falls slowly "
              f"and the opposites' false hits hardly move), so the rule's pick is the safe end "
              f"of a plateau rather than a sharp optimum. This is the default "
              f"`cache.categories.<name>.threshold`. Without the guard the same rule picks "
              f"{cp['threshold']:.3f} (hit rate {cp['hit_rate']:.1%}, false hits "
              f"{cp['false_hit_rate']:.1%}).",
              "",
              f"No threshold keeps the opposites out: their false-hit rate is "
              f"{max(opp):.0%} at most and still {opp[-1]:.0%} at {guard[-1]['threshold']:.3f}, "
              f"where only {guard[-1]['hit_rate']:.0%} of paraphrases hit. A category whose "
              "questions turn on one such word (quizzes, math) should be exact-only: "
              "`threshold: 1.0`."]
    lines += ["", "What this does not show: the near-misses are made by the very changes the "
              "guard checks (numbers, names), so its zero false hits on them are by "
              "construction; the *opposites* column is the honest test of the threshold. Human "
              "paraphrases change more words than these rewrites and will hit less often at the "
              "same threshold. A deployment should measure its own traffic per category "
              "(hits, misses and dollars saved are in `/metrics` and in each record).",
              "", "## Examples", ""]
    for e in r["examples"]:
        if "original" in e:
            lines += [f"- original: {e['original']!r}", f"  - paraphrase: {e['paraphrase']!r}"]
        else:
            lines.append(f"- near-miss ({e['kind']}): {e['near_miss']!r}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

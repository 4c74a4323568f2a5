"""Graders against the bundled references: a right answer must score 1, a wrong one 0.

For every bundled prompt with a usable reference, each grader grades

* **right** answers: the reference answer phrased the ways models write it (``The answer is (C).``,
  ``**C**``, ``#### 42``, ``\\boxed{...}``, a sentence containing the reference, ...) — must be 1;
* **wrong** answers: another option, another number, another prompt's answer, unrelated text, a
  program that raises — must be 0;

both in the default reading and in ``strict`` mode (LLMRouter's rule as it is), per metric and per
phrasing. Prompts with an unusable reference must come out *ungraded*.

The bundled scores were recorded by LLMRouter grading the nine models' real answers; those answers
are not in the data, so agreement with the recorded rule is checked here on constructed answers,
and — with ``--llmrouter-git-dir`` pointing at a clone of ulab-uiuc/LLMRouter — by running
LLMRouter's own scoring functions (read from that clone at run time, at the commit the data came
from) on the same answers and counting where strict mode and the default reading agree with them.

The judge grader is measured on a labelled sample with a deterministic **stand-in** judge (it
checks whether the reference's final answer is contained in the answer): this tests the judge's
plumbing (prompt, score parsing, cost accounting), not the judgement of any real model.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import random
import re
import string
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, write_json  # noqa: E402

from polyroute.data import Reference, load_references  # noqa: E402
from polyroute.data.bundled import bundled_paths  # noqa: E402
from polyroute.data.loaders import load_models  # noqa: E402
from polyroute.grading import JudgeReply, make_grader, task_prompt  # noqa: E402
from polyroute.grading.code import called_functions, network_isolated  # noqa: E402
from polyroute.grading.commongen import concepts_of  # noqa: E402
from polyroute.grading.gsm8k import reference_number  # noqa: E402
from polyroute.grading.math_answer import reference_answer  # noqa: E402
from polyroute.grading.qa import normalize_text  # noqa: E402

LLMROUTER_COMMIT = "4e7a796942ce26e9d5f2b93191c7c2585c99c2e3"
Answers = list[tuple[str, str]]  # (phrasing, answer text)


# -- constructed answers -------------------------------------------------------------------------
def choice_answers(ref: Reference) -> tuple[Answers, Answers]:
    labels = ref.choices.labels
    right = str(ref.ground_truth)
    wrong = labels[(labels.index(right) + 1) % len(labels)]

    def phrased(label: str) -> Answers:
        text = ref.choices.text_of(label)
        return [("The answer is (X).", f"Let me think step by step.\nThe answer is ({label})."),
                ("**X**", f"**{label}**"),
                ("Answer: X) text", f"Answer: {label}) {text}"),
                ("bare X", label),
                ("the correct option is X", f"The correct option is {label}.")]

    return phrased(right), phrased(wrong)


def qa_answers(ref: Reference, others: list[Reference]) -> tuple[Answers, Answers]:
    truth = str(ref.ground_truth)
    norm = normalize_text(truth)
    other = next(str(o.ground_truth) for o in others
                 if normalize_text(str(o.ground_truth)) not in (norm,)
                 and norm not in normalize_text(str(o.ground_truth))
                 and normalize_text(str(o.ground_truth)) not in norm)
    def phrased(ans: str) -> Answers:
        return [("the reference", ans), ("The answer is X.", f"The answer is {ans}."),
                ("a wordy sentence", f"As far as I know, it is **{ans}**, which is well "
                                     f"documented in several sources.")]
    return phrased(truth), phrased(other)


def _fmt_number(n: Decimal) -> str:
    return format(n.normalize(), "f") if n == n.to_integral_value() else str(n)


def gsm8k_answers(ref: Reference) -> tuple[Answers, Answers]:
    n = reference_number(str(ref.ground_truth))

    def phrased(v: Decimal) -> Answers:
        s = _fmt_number(v)
        with_commas = f"{int(v):,}" if v == v.to_integral_value() else s
        return [("#### N", f"First we add, then we multiply.\n#### {s}"),
                ("The answer is $N,NNN.", f"So the answer is ${with_commas}."),
                ("\\boxed{N}", f"The total is \\boxed{{{s}}}."),
                ("N.0", f"The answer is {s}.0"),
                ("N, then a later number", f"The answer is {s}. (I used 3 steps.)")]

    return phrased(n), phrased(n + 1)


def math_answers(ref: Reference, others: list[Reference]) -> tuple[Answers, Answers]:
    truth = reference_answer(str(ref.ground_truth))

    def digits(s: str) -> list[str]:
        return re.findall(r"\d+", s)

    def squash(s: str) -> str:
        return re.sub(r"\s+", "", s)

    other = next(a for a in (reference_answer(str(o.ground_truth)) for o in others)
                 if squash(a) != squash(truth) and digits(a) != digits(truth))

    def phrased(ans: str) -> Answers:
        return [("\\boxed{X}", f"We simplify and get \\boxed{{{ans}}}."),
                ("The final answer is $\\boxed{X}$.", f"The final answer is $\\boxed{{{ans}}}$."),
                ("The answer is $X$. (no box)", f"The answer is ${ans}$.")]

    return phrased(truth), phrased(other)


def commongen_answers(ref: Reference, others: list[Reference]
                      ) -> tuple[Answers, Answers, tuple[str, str, float]]:
    concepts = concepts_of(str(ref.ground_truth))

    def unrelated(word: str) -> bool:  # shares no 4-letter start with any concept of this prompt
        return not any(word[:4] == c[:4] for c in concepts)

    foreign = [c for o in others for c in concepts_of(str(o.ground_truth)) if unrelated(c)][:8]
    listed = ", ".join(concepts[:-1]) + " and " + concepts[-1]
    plural = ", ".join(c + "s" for c in concepts)
    half = concepts[: len(concepts) // 2]
    right = [("a sentence using every concept", f"At the fair we saw the {listed}."),
             ("every concept inflected (+s)", f"Picture this: {plural}.")]
    wrong = [("another prompt's concepts only", ", ".join(foreign) + ".")]
    partial = ("first half of the concepts", ", ".join(half) + ".", len(half) / len(concepts))
    return right, wrong, partial


def code_wrong(ref: Reference) -> str:
    if isinstance(ref.ground_truth, tuple):
        names = called_functions(ref.ground_truth) or ["solution"]
        defs = "\n".join(f"def {n}(*args, **kwargs):\n    raise NotImplementedError"
                         for n in names)
        return f"[BEGIN]\n{defs}\n[DONE]"
    return "[BEGIN]\n    raise NotImplementedError\n[Done]"


# -- LLMRouter's own scoring functions, read from a clone at run time ----------------------------
def llmrouter_scorer(git_dir: str) -> Callable[[str, str, str, str], float]:
    """``score(metric, answer, ground_truth, task)`` by LLMRouter's ``eval_perf`` (code_eval
    excluded: it needs files that are not in the repository)."""

    def show(path: str) -> str:
        return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{LLMROUTER_COMMIT}:{path}"],
                              check=True, capture_output=True, text=True).stdout

    def functions(source: str, names: set[str] | None) -> str:
        tree = ast.parse(source)
        keep = [n for n in tree.body if isinstance(n, ast.FunctionDef)
                and (names is None or n.name in names)]
        return "\n\n".join(ast.get_source_segment(source, n) for n in keep)

    namespace: dict[str, Any] = {"re": re, "string": string, "Counter": Counter,
                                 "Tuple": tuple}
    exec(functions(show("llmrouter/data/math_eval.py"), None), namespace)  # noqa: S102
    exec(functions(show("llmrouter/utils/evaluation.py"),  # noqa: S102
                   {"normalize_answer", "f1_score", "exact_match_score", "cem_score"}), namespace)
    exec(functions(show("llmrouter/data/api_calling_evaluation.py"), {"eval_perf"}),  # noqa: S102
         namespace)
    return lambda metric, answer, truth, task: float(namespace["eval_perf"](metric, answer, truth,
                                                                           task))


def llmrouter_prompt_check(git_dir: str, refs: dict[str, Reference]) -> dict[str, dict[str, int]]:
    """Per task: prompts where :func:`task_prompt` equals LLMRouter's ``generate_task_query``."""
    source = subprocess.run(["git", f"--git-dir={git_dir}", "show",
                             f"{LLMROUTER_COMMIT}:llmrouter/utils/prompting.py"],
                            check=True, capture_output=True, text=True).stdout
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - the point: run their template code, not a copy of it
    out: dict[str, Counter] = defaultdict(Counter)
    for ref in refs.values():
        sample: dict[str, Any] = {"query": ref.prompt}
        if ref.task in ("mmlu", "gpqa"):
            sample["choices"] = list(ref.choices.texts)
        elif ref.choices is not None:
            sample["choices"] = {"label": list(ref.choices.labels),
                                 "text": list(ref.choices.texts)}
        if ref.task == "mbpp":
            sample["choices"] = list(ref.ground_truth)
        try:
            theirs = namespace["generate_task_query"](ref.task, sample)
        except ValueError:  # no template: we send the prompt as it is
            out[ref.task]["no LLMRouter template"] += 1
            continue
        out[ref.task]["identical" if task_prompt(ref) == theirs else "different"] += 1
    return {task: dict(c) for task, c in sorted(out.items())}


# -- the run -------------------------------------------------------------------------------------
class Tally:
    """Counts per (metric, kind, phrasing, mode): graded as expected, or not."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str, str], Counter] = defaultdict(Counter)
        self.misses: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)

    def add(self, key: tuple[str, str, str, str], ok: bool, example: str) -> None:
        self.counts[key]["ok" if ok else "not"] += 1
        if not ok and len(self.misses[key]) < 3:
            self.misses[key].append(example)


def run(refs: dict[str, Reference], llmrouter: Callable | None) -> dict[str, Any]:
    graders = {m: make_grader(m) for m in ("em_mc", "f1_score", "GSM8K", "MATH",
                                           "commongen_coverage", "code_eval")}
    strict = {m: make_grader(m, strict=True) for m in ("em_mc", "GSM8K", "MATH", "code_eval")}
    strict |= {m: graders[m] for m in ("f1_score", "commongen_coverage")}  # no second reading
    tally, cross = Tally(), Tally()
    ungraded = Counter()
    by_metric: dict[str, list[Reference]] = defaultdict(list)
    for ref in sorted(refs.values(), key=lambda r: r.prompt_id):
        by_metric[ref.metric].append(ref)

    def others(ref: Reference) -> list[Reference]:
        pool = [r for r in by_metric[ref.metric] if r.usable and r.task == ref.task]
        i = pool.index(ref)
        return pool[i + 1:] + pool[:i]

    for metric, items in by_metric.items():
        for ref in items:
            if not ref.usable:
                g = graders[metric].grade("The answer is (A).", ref)
                ungraded["ungraded" if not g.graded else "GRADED (a bug)"] += 1
                continue
            expect: list[tuple[str, str, str, float]] = []  # kind, phrasing, answer, expected
            if metric == "em_mc":
                right, wrong = choice_answers(ref)
            elif metric == "f1_score":
                right, wrong = qa_answers(ref, others(ref))
            elif metric == "GSM8K":
                right, wrong = gsm8k_answers(ref)
            elif metric == "MATH":
                right, wrong = math_answers(ref, others(ref))
            elif metric == "commongen_coverage":
                right, wrong, (name, text, frac) = commongen_answers(ref, others(ref))
                expect.append(("partial", name, text, frac))
            else:
                right, wrong = [], [("a program that raises", code_wrong(ref))]
            expect += [("right", p, a, 1.0) for p, a in right]
            expect += [("wrong", p, a, 0.0) for p, a in wrong]
            for kind, phrasing, answer, want in expect:
                for mode, grader in (("default", graders[metric]), ("strict", strict[metric])):
                    got = grader.grade(answer, ref).score
                    ok = got is not None and math.isclose(got, want, abs_tol=1e-9)
                    tally.add((metric, kind, phrasing, mode), ok,
                              f"{ref.prompt_id}: {answer[:90]!r} → {got}")
                if llmrouter is not None and metric not in ("code_eval", "commongen_coverage"):
                    theirs = llmrouter(metric, answer, _as_str(ref.ground_truth), ref.task)
                    for mode, grader in (("default", graders[metric]), ("strict", strict[metric])):
                        ours = grader.grade(answer, ref).score
                        cross.add((metric, kind, phrasing, mode), ours == theirs,
                                  f"{ref.prompt_id}: {answer[:90]!r} ours {ours} "
                                  f"LLMRouter {theirs}")
    return {"tally": tally, "cross": cross if llmrouter is not None else None,
            "ungraded": ungraded}


def _as_str(truth: Any) -> str:
    return "\n".join(truth) if isinstance(truth, tuple) else str(truth)


# -- the judge on a labelled sample --------------------------------------------------------------
def stand_in_judge(prompt: str) -> JudgeReply:
    """Deterministic stand-in: 1 if the reference's final answer is contained in the answer."""
    reference = re.search(r"## Reference answer \(treat as correct\)\n(.*?)\n\n## Answer to grade",
                          prompt, re.S)
    answer = re.search(r"## Answer to grade\n(.*?)\n\nReply with", prompt, re.S)
    key = reference.group(1).split("####")[-1] if reference else ""
    hit = bool(key.strip()) and answer is not None and \
        normalize_text(key) in normalize_text(answer.group(1))
    text = f"The answer {'matches' if hit else 'does not match'} the reference.\nScore: {int(hit)}"
    return JudgeReply(text, math.ceil(len(prompt) / 4), math.ceil(len(text) / 4))


def judge_sample(refs: dict[str, Reference], n: int, seed: int) -> dict[str, Any]:
    models = load_models(bundled_paths()[1])
    model = max(models.values(), key=lambda m: m.output_price_per_mtok)
    judge = make_grader("judge", backend=stand_in_judge, model=model)
    pool = sorted((r for r in refs.values() if r.usable and r.metric in ("f1_score", "GSM8K")),
                  key=lambda r: r.prompt_id)
    sample = random.Random(seed).sample(pool, n)
    agree, total = Counter(), Counter()
    for ref in sample:
        if ref.metric == "f1_score":
            right, wrong = qa_answers(ref, [r for r in pool if r.metric == "f1_score" and r != ref])
        else:
            right, wrong = gsm8k_answers(ref)
        for label, answers in ((1.0, right[:1]), (0.0, wrong[:1])):
            for _, answer in answers:
                total[ref.metric] += 1
                agree[ref.metric] += judge.grade(answer, ref).score == label
    return {"judge_model": model.name, "sample_prompts": n, "seed": seed,
            "answers": sum(total.values()), "agree": sum(agree.values()),
            "per_metric": {m: {"answers": total[m], "agree": agree[m]} for m in sorted(total)},
            "calls": judge.usage.calls, "prompt_tokens": judge.usage.prompt_tokens,
            "completion_tokens": judge.usage.completion_tokens, "cost_dollars": judge.usage.cost}


# -- report --------------------------------------------------------------------------------------
def _rows(tally: Tally) -> list[dict[str, Any]]:
    rows = []
    for (metric, kind, phrasing, mode), c in sorted(tally.counts.items()):
        rows.append({"metric": metric, "kind": kind, "phrasing": phrasing, "mode": mode,
                     "as_expected": c["ok"], "total": c["ok"] + c["not"],
                     "examples_not_as_expected": tally.misses.get((metric, kind, phrasing, mode),
                                                                  [])})
    return rows


def write_markdown(result: dict[str, Any]) -> Path:
    m = result["machine"]
    lines = [
        "# Graders against the bundled references",
        "",
        f"Commit `{m['commit']}`, {m['date']}; Python {m['python']} on {m['platform']}, "
        f"{m['cpus']} CPUs (load {m['load_average_1min_at_start']}); {result['seconds']:.0f} s. "
        "Made by `benchmarks/graders.py`.",
        "",
        "Every bundled prompt with a usable reference is graded with constructed answers: the "
        "reference phrased as models write it (**right**, must score 1), and a wrong answer "
        "(**wrong**, must score 0); for commongen also the first half of the concepts "
        "(**partial**, must score exactly k/n). *default* is each grader's normal reading, "
        "*strict* is LLMRouter's rule as it is (for f1_score and commongen the two are the same "
        "grader). The counts say how many answers were graded as expected.",
        "",
        "**default or strict?** *strict* grades a new model exactly as the nine bundled models "
        "were graded, format failures included (`**C**` scores 0 because the prompt asked for "
        "`(C)`), so its scores are comparable with the recorded ones. *default* credits right "
        "answers in any common phrasing, so a new model can score above what the bundled models "
        "would have been given for the same answers. The rows below show where the two differ.",
        "",
        "**What this does not show.** The bundled scores were recorded by LLMRouter grading the "
        "nine models' real answers; those answers are not in the data, so agreement with the "
        "recorded rule cannot be checked on them. It is checked here on constructed answers, and "
        "below by running LLMRouter's own scoring functions on the same answers.",
        "",
        f"Prompts whose reference is flagged unusable: {result['references'] - result['usable']}, "
        f"graded as {dict(result['ungraded'])} (never scored 0).",
        "",
        "| metric | kind | phrasing | default | strict |",
        "|---|---|---|---|---|",
    ]
    pairs: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for row in result["rows"]:
        pairs[(row["metric"], row["kind"], row["phrasing"])][row["mode"]] = \
            f"{row['as_expected']}/{row['total']}"
    for (metric, kind, phrasing), modes in pairs.items():
        lines.append(f"| {metric} | {kind} | {phrasing} | {modes.get('default', '')} | "
                     f"{modes.get('strict', '')} |")
    lines += ["", "Code: the references ship only the tests (MBPP assertions, HumanEval "
              "`check(candidate)`), no canonical solutions, so no *right* program can be graded "
              "from the data; the wrong program (every called function raises) must fail. "
              f"Programs ran in a subprocess with time and memory limits; network namespace "
              f"isolation {'was' if result['network_isolated'] else 'was NOT'} available "
              "(see `polyroute/grading/code.py`).", ""]
    cross = result.get("cross_check")
    if cross:
        lines += ["## Against LLMRouter's own scoring functions",
                  "",
                  f"LLMRouter's `eval_perf` (commit `{LLMROUTER_COMMIT[:12]}`, read from a clone "
                  "at run time) scored the same constructed answers; the counts say on how many "
                  "our grader gave the same score. *strict* must agree everywhere; "
                  "*default* differs exactly where it reads a phrasing LLMRouter's rule misses "
                  "or misreads.",
                  "",
                  "| metric | kind | phrasing | default = LLMRouter | strict = LLMRouter |",
                  "|---|---|---|---|---|"]
        cpairs: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
        for row in cross:
            cpairs[(row["metric"], row["kind"], row["phrasing"])][row["mode"]] = \
                f"{row['as_expected']}/{row['total']}"
        for (metric, kind, phrasing), modes in cpairs.items():
            lines.append(f"| {metric} | {kind} | {phrasing} | {modes.get('default', '')} | "
                         f"{modes.get('strict', '')} |")
        lines.append("")
        prompts = result.get("prompt_check") or {}
        same = sum(c.get("identical", 0) for c in prompts.values())
        diff = sum(c.get("different", 0) for c in prompts.values())
        none = {t: c["no LLMRouter template"] for t, c in prompts.items()
                if "no LLMRouter template" in c}
        lines += [f"`polyroute.grading.task_prompt` (the message a calibrated model is sent) is "
                  f"identical to LLMRouter's `generate_task_query` on **{same}** prompts and "
                  f"differs on {diff}; LLMRouter has no template for {none} (sent as they are).",
                  ""]
    j = result["judge"]
    per = ", ".join(f"{k} {v['agree']}/{v['answers']}" for k, v in j["per_metric"].items())
    lines += ["## LLM judge (stand-in)",
              "",
              f"A deterministic **stand-in** judge (1 if the reference's final answer is contained "
              f"in the answer, else 0) graded {j['answers']} labelled answers (a right and a wrong "
              f"one for each of {j['sample_prompts']} sampled f1_score and GSM8K prompts, seed "
              f"{j['seed']}): **{j['agree']}/{j['answers']} agree** with the labels "
              f"({per}). Charged at {j['judge_model']}'s prices with its token counts (¼ of the "
              f"characters): {j['calls']} calls, {j['prompt_tokens']} prompt + "
              f"{j['completion_tokens']} completion tokens, ${j['cost_dollars']:.4f}. This checks "
              "the judge grader's plumbing — rubric prompt, score parsing, cost counting — not the "
              "judgement of any real model.", ""]
    lines += RULES
    path = RESULTS / "graders.md"
    path.write_text("\n".join(lines))
    return path


RULES = [
    "## How each grader's rule was checked against LLMRouter's code",
    "",
    "Read at commit `4e7a796942ce` of ulab-uiuc/LLMRouter; our graders are written afresh.",
    "",
    "- **em_mc** — `llmrouter/utils/evaluation.py` `exact_match_score(..., 'mc')`: the last "
    "`(letter)` in the answer must contain the label. Default reading adds `**C**`, `Answer: C`, "
    "bare `C`, ... only where no parenthesised option letter exists (LLMRouter scored those 0).",
    "- **f1_score** — `llmrouter/data/api_calling_evaluation.py` `eval_perf` overrides the metric "
    "to `cem` for natural_qa and trivia_qa: normalised reference *contained* in the normalised "
    "answer. Token F1 is not what was recorded (every recorded score on these tasks is 0 or 1).",
    "- **GSM8K** — `eval_perf`: last run of digits/dots/commas, `,$.` deleted, string equality. "
    "Default reads `####`, `\\boxed{}`, \"answer is\" first and compares values.",
    "- **MATH** — `eval_perf` + `llmrouter/data/math_eval.py` (Hendrycks normalisation): last "
    "`\\boxed{}` of answer and reference, `is_equiv`; no box scores 0. Default also reads stated "
    "answers without a box and compares numeric values.",
    "- **code_eval** — `eval_perf` + `data/mbpp/mbpp_eval.py`, `data/human_eval/execution.py`: "
    "`[BEGIN]...[DONE]` extraction, tests run with a 3 s limit; pass@1 of one sample.",
    "- **commongen_coverage** — LLMRouter's code at this commit has **no** coverage function "
    "(`eval_perf` returns 0 for unknown metrics, yet the recorded commongen scores are fractions "
    "k/n). The rule behind them cannot be checked; ours counts concepts used as words or regular "
    "inflections (see `polyroute/grading/commongen.py`).",
    "",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llmrouter-git-dir", default=os.environ.get("LLMROUTER_GIT_DIR"),
                        help="git dir of a ulab-uiuc/LLMRouter clone, to run its scoring functions")
    parser.add_argument("--judge-sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.time()
    info = machine()
    refs = load_references()
    llmrouter = llmrouter_scorer(args.llmrouter_git_dir) if args.llmrouter_git_dir else None
    out = run(refs, llmrouter)
    result = {"machine": info, "references": len(refs),
              "usable": sum(r.usable for r in refs.values()),
              "ungraded": dict(out["ungraded"]), "rows": _rows(out["tally"]),
              "cross_check": _rows(out["cross"]) if out["cross"] is not None else None,
              "network_isolated": network_isolated(),
              "prompt_check": (llmrouter_prompt_check(args.llmrouter_git_dir, refs)
                               if args.llmrouter_git_dir else None),
              "judge": judge_sample(refs, args.judge_sample, args.seed)}
    result["seconds"] = time.time() - t0
    write_json("graders.json", result)
    print(write_markdown(result).read_text())


if __name__ == "__main__":
    main()

"""What a right answer is, per bundled prompt: the references the graders compare answers with.

The bundled outcomes say *how well* each of 9 models answered; to grade a model the data has never
seen (``polyroute onboard``) one needs *what* a right answer is. ``_bundled/references.jsonl.gz``
carries, per ``prompt_id``, the task, the metric LLMRouter scored it with, the reference
(``ground_truth``) and the answer choices, from the same MIT-licensed source as the outcomes (see
``_bundled/NOTICE.md``).

A reference no grader can use is kept and flagged (``usable`` False, ``note`` says why) rather than
dropped, so that a prompt's absence from a calibration run is always explained. The rule that flags
them lives here once (:func:`unusable_reason`); the shipped flags are checked against it by a test.

Records are joined to prompts **by prompt_id**, never by position.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from polyroute.errors import DataError

#: The metric names the bundled references use (LLMRouter's names).
KNOWN_METRICS = ("GSM8K", "MATH", "code_eval", "commongen_coverage", "em_mc", "f1_score")

_FIELDS = ("prompt_id", "task", "metric", "ground_truth", "choices", "usable", "note")


@dataclass(frozen=True)
class Choices:
    """The labelled options of a multiple-choice prompt (``labels[i]`` names ``texts[i]``)."""

    labels: tuple[str, ...]
    texts: tuple[str, ...]

    def text_of(self, label: str) -> str | None:
        """The option text a label names, or None if no option has that label."""
        for lab, text in zip(self.labels, self.texts, strict=True):
            if lab == label:
                return text
        return None


@dataclass(frozen=True)
class Reference:
    """Everything a grader needs to score one answer to one prompt.

    ``ground_truth`` is a string (a choice label, a number, a LaTeX answer or solution, an answer
    text, a comma-separated concept list, or HumanEval's ``check(candidate)`` test code), a tuple of
    test assertions (MBPP), or None (no reference: only the judge can grade). ``prompt`` is the
    prompt text where known: HumanEval tests need the function stub it defines, the judge needs the
    question.
    """

    prompt_id: str
    task: str
    metric: str
    ground_truth: str | tuple[str, ...] | None
    choices: Choices | None = None
    usable: bool = True
    note: str = ""
    prompt: str | None = None


def unusable_reason(task: str, metric: str, ground_truth: Any, choices: Any,
                    prompt: str | None) -> str:
    """Why no grader can score answers to this prompt against its reference ("" if one can)."""
    if ground_truth is None or ground_truth == "" or ground_truth == []:
        return "no reference answer"
    if metric == "em_mc":
        labels = (choices or {}).get("labels") or []
        if not re.fullmatch(r"[A-Za-z]", str(ground_truth)):
            return (f"choice label {ground_truth!r} is not a letter: LLMRouter's em_mc rule reads "
                    "only a letter in parentheses, so it could credit no answer (every recorded "
                    "score is 0)")
        if ground_truth not in labels:
            return f"reference label {ground_truth!r} is not among the choice labels {labels}"
    if metric == "code_eval":
        if isinstance(ground_truth, list):
            if not all(isinstance(t, str) and t.strip() for t in ground_truth):
                return "an empty test assertion"
        elif "def check(" not in str(ground_truth):
            return "the tests define no check(candidate) function"
        elif prompt is None or entry_point(prompt) is None:
            return "the prompt defines no function for check() to test"
    if metric == "f1_score" and not re.sub(r"\W", "", str(ground_truth)):
        return (f"the reference {ground_truth!r} has no letters or digits (an emoji, say): no "
                "worded answer contains it, and every recorded score is 0")
    return ""


def entry_point(prompt: str) -> str | None:
    """The function a HumanEval prompt asks for: the last top-level ``def`` it declares."""
    names = re.findall(r"^def\s+([A-Za-z_]\w*)\s*\(", prompt, flags=re.M)
    return names[-1] if names else None


def references_path() -> Path:
    """Where the bundled references file lives inside the installed package."""
    return Path(str(resources.files("polyroute.data") / "_bundled")) / "references.jsonl.gz"


def load_references(path: str | Path | None = None,
                    prompts: Mapping[str, str] | None = None) -> dict[str, Reference]:
    """Read a references file (the bundled one by default) into ``{prompt_id: Reference}``.

    ``prompts`` maps prompt_id → text to attach to each record; by default, for the bundled file,
    the texts of the bundled outcomes (joined by prompt_id). Errors name the file and line.
    """
    source = Path(path) if path is not None else references_path()
    if prompts is None and path is None:
        prompts = bundled_prompt_texts()
    out: dict[str, Reference] = {}
    for lineno, raw in _read_lines(source):
        ref = _parse(raw, f"{source}:{lineno}", prompts or {})
        if ref.prompt_id in out:
            raise DataError(f"{source}:{lineno}: prompt_id {ref.prompt_id!r} appears twice")
        out[ref.prompt_id] = ref
    return out


def bundled_prompt_texts() -> dict[str, str]:
    """prompt_id → prompt text of the bundled outcomes (read from the file, no matrices built)."""
    from polyroute.data.bundled import bundled_paths

    data, _ = bundled_paths()
    texts: dict[str, str] = {}
    for _, raw in _read_lines(data):
        texts[raw["prompt_id"]] = raw["prompt"]
    return texts


def build_references_file(records: Iterable[Mapping[str, Any]], prompts: Mapping[str, str],
                          destination: str | Path) -> int:
    """Write the shipped file from the shared ``references.jsonl`` records: each record as given,
    plus ``usable`` and ``note`` from :func:`unusable_reason`. Returns the number of records."""
    n = 0
    with gzip.open(destination, "wt", encoding="utf-8", compresslevel=9) as fh:
        for rec in records:
            note = unusable_reason(rec["task"], rec["metric"], rec["ground_truth"], rec["choices"],
                                   prompts.get(rec["prompt_id"]))
            row = {k: rec[k] for k in _FIELDS[:5]} | {"usable": not note, "note": note}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


# -- parsing -----------------------------------------------------------------------------------
def _read_lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    from polyroute.data.loaders import read_jsonl

    return read_jsonl(path, missing="no such references file")


def _parse(raw: dict[str, Any], where: str, prompts: Mapping[str, str]) -> Reference:
    for key in ("prompt_id", "task", "metric"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise DataError(f"{where}: field {key!r} must be a non-empty string")
    truth = raw.get("ground_truth")
    if isinstance(truth, list):
        if not all(isinstance(t, str) for t in truth):
            raise DataError(f"{where}: ground_truth list must hold strings")
        truth = tuple(truth)
    elif truth is not None and not isinstance(truth, str):
        raise DataError(f"{where}: ground_truth must be a string, a list of strings or null")
    choices = _parse_choices(raw.get("choices"), where)
    prompt = prompts.get(raw["prompt_id"])
    if "usable" in raw:
        usable, note = bool(raw["usable"]), str(raw.get("note") or "")
    else:  # a user's own file without flags: work them out
        note = unusable_reason(raw["task"], raw["metric"], raw.get("ground_truth"),
                               raw.get("choices"), prompt)
        usable = not note
    return Reference(prompt_id=raw["prompt_id"], task=raw["task"], metric=raw["metric"],
                     ground_truth=truth, choices=choices, usable=usable, note=note, prompt=prompt)


def _parse_choices(raw: Any, where: str) -> Choices | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("labels"), list) \
            or not isinstance(raw.get("texts"), list):
        raise DataError(f"{where}: choices must be an object with 'labels' and 'texts' lists")
    if len(raw["labels"]) != len(raw["texts"]):
        raise DataError(f"{where}: choices has {len(raw['labels'])} labels but "
                        f"{len(raw['texts'])} texts")
    return Choices(tuple(str(x) for x in raw["labels"]), tuple(str(x) for x in raw["texts"]))

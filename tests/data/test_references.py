"""The shipped references: one per bundled prompt, joined by prompt_id, unusable ones flagged."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from polyroute.data import Choices, Reference, load_bundled, load_references
from polyroute.data.references import (
    bundled_prompt_texts,
    references_path,
    unusable_reason,
)
from polyroute.errors import DataError

#: The matched copy the shipped file was built from, wherever the checkout sits under /work.
SHARED = next((p / "shared" / "data" / "llmrouter-bench" / "references.jsonl"
               for p in Path(__file__).resolve().parents
               if (p / "shared" / "data" / "llmrouter-bench" / "references.jsonl").is_file()),
              Path("/nonexistent"))


@pytest.fixture(scope="module")
def refs() -> dict[str, Reference]:
    return load_references()


@pytest.fixture(scope="module")
def bundled():
    return load_bundled()


def test_one_reference_per_bundled_prompt_with_its_task_and_text(refs, bundled) -> None:
    assert set(refs) == set(bundled.prompt_ids) and len(refs) == 5489
    for pid, text, task in zip(bundled.prompt_ids, bundled.prompts, bundled.tasks, strict=True):
        assert refs[pid].task == task
        assert refs[pid].prompt == text


def test_unusable_references_are_flagged_not_dropped(refs) -> None:
    flagged = [r for r in refs.values() if not r.usable]
    assert Counter(r.task for r in flagged) == {"arc_challenge": 9, "trivia_qa": 3}
    assert all(r.note for r in flagged)
    assert all(r.ground_truth in {"1", "2", "3", "4"} for r in flagged if r.task == "arc_challenge")
    assert all(not r.note for r in refs.values() if r.usable)


def test_shipped_flags_follow_the_one_rule(refs) -> None:
    for r in refs.values():
        truth = list(r.ground_truth) if isinstance(r.ground_truth, tuple) else r.ground_truth
        choices = None if r.choices is None else {"labels": list(r.choices.labels),
                                                   "texts": list(r.choices.texts)}
        assert unusable_reason(r.task, r.metric, truth, choices, r.prompt) == r.note


def test_typed_fields(refs) -> None:
    by_metric = Counter(r.metric for r in refs.values())
    assert by_metric == {"em_mc": 2542, "f1_score": 1000, "MATH": 704, "GSM8K": 500,
                         "code_eval": 593, "commongen_coverage": 150}
    for r in refs.values():
        if r.metric == "em_mc":
            assert isinstance(r.choices, Choices) and r.choices.text_of(str(r.ground_truth)) \
                is not None or not r.usable
        if r.task == "mbpp":
            assert isinstance(r.ground_truth, tuple) and r.ground_truth


@pytest.mark.skipif(not SHARED.is_file(), reason="shared data not present")
def test_shipped_file_carries_the_shared_records_unchanged() -> None:
    with gzip.open(references_path(), "rt", encoding="utf-8") as fh:
        shipped = {(row := json.loads(line))["prompt_id"]: row for line in fh}
    with SHARED.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            row = shipped.pop(rec["prompt_id"])
            assert {k: row[k] for k in rec} == rec
    assert not shipped


def test_join_is_by_prompt_id_not_by_position(tmp_path: Path, refs) -> None:
    with gzip.open(references_path(), "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    random.Random(0).shuffle(lines)
    permuted = tmp_path / "refs.jsonl"
    permuted.write_text("".join(lines), encoding="utf-8")
    texts = dict(reversed(list(bundled_prompt_texts().items())))  # another order again
    assert load_references(permuted, prompts=texts) == refs


def test_user_file_without_flags_gets_them_worked_out(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [{"prompt_id": "a", "task": "quiz", "metric": "em_mc", "ground_truth": "B",
             "choices": {"labels": ["A", "B"], "texts": ["x", "y"]}},
            {"prompt_id": "b", "task": "quiz", "metric": "em_mc", "ground_truth": "C",
             "choices": {"labels": ["A", "B"], "texts": ["x", "y"]}},
            {"prompt_id": "c", "task": "chat", "metric": "judge", "ground_truth": None,
             "choices": None}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = load_references(path)
    assert got["a"].usable and got["a"].prompt is None
    assert not got["b"].usable and "not among the choice labels" in got["b"].note
    assert not got["c"].usable and got["c"].note == "no reference answer"


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 1: not valid JSON"),
    ('{"prompt_id": "a", "task": "t"}', ":1: field 'metric'"),
    ('{"prompt_id": "a", "task": "t", "metric": "em_mc", "ground_truth": "A",'
     ' "choices": {"labels": ["A"], "texts": []}}', "1 labels but 0 texts"),
    ('{"prompt_id": "a", "task": "t", "metric": "m", "ground_truth": 3}', "ground_truth must be"),
])
def test_bad_files_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        load_references(path)


def test_duplicate_and_missing(tmp_path: Path) -> None:
    row = json.dumps({"prompt_id": "a", "task": "t", "metric": "m", "ground_truth": "x"})
    path = tmp_path / "dup.jsonl"
    path.write_text(row + "\n" + row + "\n")
    with pytest.raises(DataError, match=r":2: prompt_id 'a' appears twice"):
        load_references(path)
    with pytest.raises(DataError, match="no such references file"):
        load_references(tmp_path / "absent.jsonl")

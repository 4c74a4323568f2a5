"""task_prompt: the calibration question as LLMRouter asked it, options and tests included."""

from __future__ import annotations

import pytest

from polyroute.data import Choices, Reference, load_references
from polyroute.errors import DataError
from polyroute.grading import task_prompt


@pytest.fixture(scope="module")
def refs() -> dict[str, Reference]:
    return load_references()


def first(refs: dict[str, Reference], task: str) -> Reference:
    return next(r for r in sorted(refs.values(), key=lambda r: r.prompt_id) if r.task == task)


def test_multiple_choice_shows_the_options_and_asks_for_a_parenthesised_letter(refs) -> None:
    for task in ("mmlu", "gpqa", "arc_challenge", "commonsense_qa", "openbook_qa"):
        ref = first(refs, task)
        text = task_prompt(ref)
        assert ref.prompt in text and "put your final answer letter in a parenthesis" in text
        for label, option in zip(ref.choices.labels, ref.choices.texts, strict=True):
            assert option in text and label in text


def test_formats_per_task(refs) -> None:
    mbpp = first(refs, "mbpp")
    assert all(t in task_prompt(mbpp) for t in mbpp.ground_truth)
    assert "[BEGIN] <Your Code> [Done]" in task_prompt(mbpp)
    assert "\\boxed{}" in task_prompt(first(refs, "math"))
    assert "function body only" in task_prompt(first(refs, "human_eval"))
    for task in ("natural_qa", "commongen", "agentverse-mgsm", "agentverse-logicgrid"):
        ref = first(refs, task)
        assert task_prompt(ref) == ref.prompt


def test_exact_text_of_a_labelled_question() -> None:
    ref = Reference("p", "arc_challenge", "em_mc", "B", Choices(("A", "B"), ("red", "blue")),
                    prompt="Sky colour?")
    assert task_prompt(ref) == (
        "\n    Answer the following multiple-choice question by selecting the correct option. You "
        "Must put your final answer letter in a parenthesis.\n\n    Question: Sky colour? \n\n"
        "    \n(A) red\n(B) blue")


def test_needs_the_prompt_text() -> None:
    with pytest.raises(DataError, match="prompt 'p': no prompt text attached"):
        task_prompt(Reference("p", "gsm8k", "GSM8K", "#### 1"))

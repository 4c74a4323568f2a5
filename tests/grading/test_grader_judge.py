"""The LLM judge, with a deterministic stand-in judge: prompt, score parsing, cost accounting."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from polyroute.data import Choices, ModelInfo, Reference
from polyroute.grading import JudgeReply, make_grader, openai_chat_backend
from polyroute.grading.judge import judge_prompt, parse_score

JUDGE = ModelInfo("judge-model", input_price_per_mtok=1.0, output_price_per_mtok=2.0)
OWN = Reference("u1", "mine", "judge", None, usable=False, note="no reference answer",
                prompt="Name a prime number above 10.")


class StandInJudge:
    """Replies with a fixed text and usage; remembers what it was asked."""

    def __init__(self, reply: str, prompt_tokens: int = 100, completion_tokens: int = 10) -> None:
        self.reply, self.pt, self.ct = reply, prompt_tokens, completion_tokens
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> JudgeReply:
        self.prompts.append(prompt)
        return JudgeReply(self.reply, self.pt, self.ct)


def test_scores_an_answer_to_a_prompt_without_reference_and_counts_cost() -> None:
    backend = StandInJudge("Correct: 11 is prime.\nScore: 0.9")
    grader = make_grader("judge", backend=backend, model=JUDGE)
    first = grader.grade("11", OWN)
    second = grader.grade("13", OWN)
    assert first.score == second.score == 0.9
    assert first.cost == pytest.approx((100 * 1.0 + 10 * 2.0) / 1e6)
    assert grader.usage.calls == 2 and grader.usage.prompt_tokens == 200
    assert grader.usage.cost == pytest.approx(2 * first.cost)
    assert "Name a prime number above 10." in backend.prompts[0] and "11" in backend.prompts[0]
    assert "Reference answer" not in backend.prompts[0]


def test_the_reference_is_shown_where_given() -> None:
    backend = StandInJudge("Score: 1")
    ref = Reference("p", "arc", "em_mc", "C", Choices(("A", "B", "C"), ("x", "y", "z")),
                    prompt="Pick one.")
    make_grader("judge", backend=backend, model=JUDGE).grade("z", ref)
    assert "## Reference answer (treat as correct)\n(C) z" in backend.prompts[0]


def test_an_unreadable_reply_is_ungraded_but_paid_for() -> None:
    grader = make_grader("judge", backend=StandInJudge("I would rather not say."), model=JUDGE)
    grade = grader.grade("11", OWN)
    assert grade.score is None and grade.cost > 0
    assert grader.usage.unreadable == 1 and grader.usage.cost == grade.cost


def test_no_prompt_no_call() -> None:
    backend = StandInJudge("Score: 1")
    grade = make_grader("judge", backend=backend, model=JUDGE).grade(
        "11", Reference("u", "mine", "judge", None, usable=False))
    assert grade.score is None and not backend.prompts


@pytest.mark.parametrize("reply, score", [
    ("Score: 1", 1.0), ("**Score:** 0.5", 0.5), ("score = 7/10", 0.7), ("Score: 80%", 0.8),
    ("Score: 0.2\nOn reflection... Score: 0.6", 0.6), ("Score: 5", None), ("Looks fine.", None),
    ("Score: 3/0", None),
])
def test_parse_score(reply: str, score: float | None) -> None:
    assert parse_score(reply) == score


def test_judge_prompt_carries_prompt_answer_and_rubric() -> None:
    text = judge_prompt("Q?", "A!", reference="R.")
    assert text.index("Q?") < text.index("R.") < text.index("A!")
    assert text.rstrip().endswith('"Score: <number from 0 to 1>".')


def test_openai_compatible_backend_reads_text_and_usage() -> None:
    seen: list[dict] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "created": 0, "model": "judge-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Fine.\nScore: 0.25"}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45}})

    client = openai.OpenAI(base_url="http://judge.invalid/v1", api_key="k",
                           http_client=httpx.Client(transport=httpx.MockTransport(endpoint)))
    grader = make_grader("judge", backend=openai_chat_backend(client, "judge-model"), model=JUDGE)
    grade = grader.grade("11", OWN)
    assert grade.score == 0.25 and grade.cost == pytest.approx((40 + 10) / 1e6)
    assert seen[0]["model"] == "judge-model" and seen[0]["temperature"] == 0.0

"""LLM-as-judge: grade answers to a user's own prompts, which have no reference grader.

A *judge backend* is any callable that sends one prompt to a model and returns the reply's text and
token usage (:class:`JudgeReply`); :func:`openai_chat_backend` makes one for any OpenAI-compatible
endpoint. The grader asks the judge to score the answer against the prompt (and the reference
answer, where one is given) on a 0–1 rubric, reads the last ``Score: x`` of the reply, and charges
the call at the judge model's prices: every :class:`Grade` carries its own cost, and the grader
keeps running totals (:attr:`JudgeGrader.usage`) for the report.

A reply without a readable score is *ungraded* (its cost is still counted), never 0: a judge that
did not answer the question says nothing about the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polyroute.data.outcomes import ModelInfo
from polyroute.data.references import Reference
from polyroute.grading.base import Grade, Grader, register

#: The rubric the judge is given; ``{reference_block}`` is empty when there is no reference.
RUBRIC = """\
You are grading an answer to a prompt. Judge only whether the answer is correct and does what the
prompt asks; ignore style and length unless the prompt asks for them.

Scoring rubric:
- 1.0: fully correct and complete.
- 0.5: partly correct, or correct but missing something the prompt asks for.
- 0.0: wrong, off-topic, or a refusal.
Use any value between 0 and 1 that fits best.

## Prompt
{prompt}
{reference_block}
## Answer to grade
{answer}

Reply with one short sentence of reasoning, then a last line of the form
"Score: <number from 0 to 1>".
"""
_REFERENCE_BLOCK = "\n## Reference answer (treat as correct)\n{reference}\n"
_SCORE = re.compile(r"score\W{0,4}\s*(-?\d+(?:\.\d+)?)\s*(?:(/)\s*(\d+(?:\.\d+)?)|(%))?",
                    re.IGNORECASE)


@dataclass(frozen=True)
class JudgeReply:
    """What a judge backend returns: the reply text and the call's token usage."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


#: Sends one prompt to the judge model and returns its reply.
JudgeBackend = Callable[[str], JudgeReply]


@dataclass
class JudgeUsage:
    """Running totals of a judge grader: calls, tokens and dollars."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unreadable: int = 0


def judge_prompt(prompt: str, answer: str, reference: str | None = None,
                 rubric: str = RUBRIC) -> str:
    """The text sent to the judge for one answer."""
    block = _REFERENCE_BLOCK.format(reference=reference) if reference else ""
    return rubric.format(prompt=prompt, reference_block=block, answer=answer)


def parse_score(reply: str) -> float | None:
    """The last ``Score: x`` in a judge reply as a number in [0, 1] (``x/10`` and ``x%`` read as
    fractions); None if there is none or it is out of range."""
    found = _SCORE.findall(reply)
    if not found:
        return None
    value, slash, denominator, percent = found[-1]
    score = float(value)
    if slash:
        if float(denominator) == 0:
            return None
        score /= float(denominator)
    elif percent:
        score /= 100
    return score if 0 <= score <= 1 else None


def reference_text(reference: Reference) -> str | None:
    """The reference answer to show the judge, if the record has a usable one."""
    truth = reference.ground_truth
    if not reference.usable or truth is None:
        return None
    if isinstance(truth, tuple):
        return "Code that passes these tests:\n" + "\n".join(truth)
    if reference.choices is not None:
        text = reference.choices.text_of(truth)
        return f"({truth}) {text}" if text is not None else truth
    return truth


@register("judge")
class JudgeGrader(Grader):
    """Scores an answer by asking a judge model (see the module docstring)."""

    needs_reference = False

    def __init__(self, backend: JudgeBackend, model: ModelInfo, rubric: str = RUBRIC) -> None:
        self.backend = backend
        self.model = model
        self.rubric = rubric
        self.usage = JudgeUsage()

    def cost_of(self, reply: JudgeReply) -> float:
        """Dollars one judge call cost at the judge model's prices."""
        return (reply.prompt_tokens * self.model.input_price_per_mtok
                + reply.completion_tokens * self.model.output_price_per_mtok) / 1_000_000

    def _grade(self, answer: str, reference: Reference) -> Grade:
        if not reference.prompt:
            return Grade.ungraded("no prompt text to judge the answer against")
        reply = self.backend(judge_prompt(reference.prompt, answer, reference_text(reference),
                                          self.rubric))
        cost = self.cost_of(reply)
        self.usage.calls += 1
        self.usage.prompt_tokens += reply.prompt_tokens
        self.usage.completion_tokens += reply.completion_tokens
        self.usage.cost += cost
        score = parse_score(reply.text)
        if score is None:
            self.usage.unreadable += 1
            return Grade.ungraded(f"the judge's reply has no score in [0, 1]: {reply.text[-80:]!r}",
                                  cost)
        return Grade(score, f"judge {self.model.name}: {score:g}", cost)


def openai_chat_backend(client: Any, model: str, max_tokens: int = 256,
                        temperature: float = 0.0) -> JudgeBackend:
    """A judge backend over an ``openai.OpenAI`` client (any OpenAI-compatible endpoint)."""

    def send(prompt: str) -> JudgeReply:
        completion = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens, temperature=temperature)
        usage = completion.usage
        return JudgeReply(completion.choices[0].message.content or "",
                          getattr(usage, "prompt_tokens", 0) or 0,
                          getattr(usage, "completion_tokens", 0) or 0)

    return send

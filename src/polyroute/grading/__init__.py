"""Graders: score a model's answer to a calibration prompt by the rule its reference names.

``make_grader(reference.metric).grade(answer, reference)`` gives a :class:`Grade` (a score in
[0, 1], or ungraded with the reason). Each metric's grader is one module; each reproduces the rule
LLMRouter recorded the bundled scores with (``strict=True`` where a grader also reads phrasings
that rule misses). ``judge`` grades answers to a user's own prompts with an LLM.
"""

from polyroute.grading import choice, code, commongen, gsm8k, judge, math_answer, qa  # noqa: F401
from polyroute.grading.base import Grade, Grader, available_metrics, make_grader, register
from polyroute.grading.judge import JudgeBackend, JudgeGrader, JudgeReply, openai_chat_backend

__all__ = [
    "Grade",
    "Grader",
    "JudgeBackend",
    "JudgeGrader",
    "JudgeReply",
    "available_metrics",
    "make_grader",
    "openai_chat_backend",
    "register",
]

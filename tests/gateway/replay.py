"""A replay stand-in: an OpenAI-compatible backend that answers as one bundled model did.

For a bundled prompt it looks up the impersonated model's recorded score and answers so that the
prompt's grader gives exactly that score: the reference phrased as a model would (several
phrasings, chosen per prompt) for a 1, a wrong answer for a 0, and for a fractional score (concept
coverage) an answer covering that share of the concepts. Each candidate answer is checked with
the grader before it is sent, so agreement holds by construction wherever an answer with that
grade can be written. Where none can — a right program for a code prompt, since no solutions
ship — it answers wrongly, and ``disagreements`` counts it. Unknown prompts get a plain answer.

It reports ``usage`` (≈ characters / 4, as the data's cost rule counts) and waits ``latency_s``
before answering. Usable from benchmarks too: ``sys.path`` must include ``tests/gateway``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import zlib
from collections import Counter
from typing import Any

from standin import request_body

from polyroute import Outcomes, load_bundled
from polyroute.data.references import Reference, load_references
from polyroute.grading import make_grader
from polyroute.grading.prompts import task_prompt

_CACHE: dict[str, Any] = {}
_LOCK = threading.Lock()


def bundled() -> tuple[Outcomes, dict[str, Reference], dict[str, int]]:
    """The bundled outcomes, references and prompt text → row (loaded once per process)."""
    with _LOCK:
        if not _CACHE:
            outcomes = load_bundled()
            _CACHE["o"] = outcomes
            _CACHE["r"] = load_references()
            refs = _CACHE["r"]
            rows = {" ".join(t.split()): i for i, t in enumerate(outcomes.prompts)}
            # Calibration calls send the prompt in its task's format (task_prompt): match both.
            for i, pid in enumerate(outcomes.prompt_ids):
                if pid in refs and refs[pid].prompt is not None:
                    rows.setdefault(" ".join(task_prompt(refs[pid]).split()), i)
            _CACHE["rows"] = rows
    return _CACHE["o"], _CACHE["r"], _CACHE["rows"]


def _right(ref: Reference) -> list[str]:
    truth = ref.ground_truth
    if ref.metric == "em_mc":
        text = ref.choices.text_of(str(truth)) if ref.choices else ""
        return [f"Let me think.\nThe answer is ({truth}).", f"**{truth}**",
                f"Answer: {truth}) {text}"]
    if ref.metric == "GSM8K":
        return [f"Step by step we get the result.\n#### {truth}", f"The answer is {truth}."]
    if ref.metric == "MATH":
        return [f"We simplify and get \\boxed{{{truth}}}.",
                f"The final answer is $\\boxed{{{truth}}}$."]
    if ref.metric == "f1_score":
        return [f"The answer is {truth}.", f"{truth}"]
    if ref.metric == "commongen_coverage":
        return [f"We saw the {truth.replace(',', ' and ')}.", str(truth)]
    return []


def _wrong(ref: Reference) -> list[str]:
    truth = ref.ground_truth
    if ref.metric == "em_mc" and ref.choices:
        labels = ref.choices.labels
        others = [lab for lab in labels if lab != truth]
        return [f"The answer is ({lab})." for lab in others]
    if ref.metric in ("GSM8K", "MATH"):
        return ["The answer is \\boxed{-987654321}. #### -987654321",
                "#### 0.123456789"]
    if ref.metric == "code_eval":
        return ["[BEGIN]\ndef solution(*args, **kwargs):\n    raise NotImplementedError\n[DONE]"]
    return ["I am not sure about this one.", "No idea, sorry.", "Let us talk about weather."]


def _covering(ref: Reference, score: float) -> list[str]:
    """Answers naming ``k`` of the concepts, ``k/n`` as close to ``score`` as can be."""
    concepts = [c.strip() for c in str(ref.ground_truth).replace(";", ",").split(",")
                if c.strip()]
    if not concepts:
        return []
    k = round(score * len(concepts))
    return [", ".join(concepts[:k]) + "." if k else "Nothing to say."]


class ReplayBackend:
    """An ASGI app impersonating ``model`` of the bundled data (see the module docstring)."""

    def __init__(self, model: str, *, latency_s: float = 0.0, seed: int = 0) -> None:
        outcomes, _refs, _rows = bundled()
        if model not in outcomes.model_names:
            raise ValueError(f"{model!r} is not a bundled model: {outcomes.model_names}")
        self.model = model
        self.column = outcomes.model_names.index(model)
        self.latency_s = latency_s
        self.seed = seed
        self.calls = Counter()
        self.disagreements = 0
        self.requests = 0

    def answer(self, prompt: str) -> tuple[str, float | None]:
        """The answer to ``prompt`` and the score its grader gives it (None: not graded)."""
        outcomes, refs, rows = bundled()
        row = rows.get(" ".join(prompt.split()))
        if row is None:
            return f"I am {self.model}.", None
        pid = outcomes.prompt_ids[row]
        ref, target = refs.get(pid), float(outcomes.quality[row, self.column])
        if ref is None or not ref.usable or math.isnan(target):
            return f"I am {self.model}; here is my answer.", None
        grader = make_grader(ref.metric)
        if target >= 1.0:
            options = _right(ref)
        elif target <= 0.0:
            options = _wrong(ref)
        else:
            options = _covering(ref, target)
        start = zlib.crc32(f"{pid}:{self.seed}".encode()) % max(1, len(options))
        ranked = options[start:] + options[:start]  # vary the phrasing by prompt, reproducibly
        fallback: tuple[str, float | None] | None = None
        for text in ranked:
            score = grader.grade(text, ref).score
            if score is not None and abs(score - target) < 1e-9:
                return text, score
            fallback = fallback or (text, score)
        self.disagreements += 1
        wrong = _wrong(ref)[0]
        return (fallback or (wrong, grader.grade(wrong, ref).score))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:  # the lifespan, answered
            return
        if scope["path"] != "/v1/chat/completions":
            await _json(send, 404, {"error": {"message": "not found", "type": "not_found"}})
            return
        request = json.loads(body)
        self.requests += 1
        prompt = next((m.get("content") for m in reversed(request.get("messages", []))
                       if m.get("role") == "user" and isinstance(m.get("content"), str)), "")
        self.calls[prompt] += 1
        text, _ = await asyncio.to_thread(self.answer, prompt)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        usage = {"prompt_tokens": math.ceil(len(prompt) / 4),
                 "completion_tokens": math.ceil(len(text) / 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": f"chatcmpl-replay-{self.requests}", "created": int(time.time()),
                "model": request.get("model")}
        if request.get("stream"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for delta, finish in (({"role": "assistant", "content": text}, None), ({}, "stop")):
                chunk = {**base, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                await send({"type": "http.response.body", "more_body": True,
                            "body": b"data: " + json.dumps(chunk).encode() + b"\n\n"})
            if (request.get("stream_options") or {}).get("include_usage"):
                chunk = {**base, "object": "chat.completion.chunk", "choices": [],
                         "usage": usage}
                await send({"type": "http.response.body", "more_body": True,
                            "body": b"data: " + json.dumps(chunk).encode() + b"\n\n"})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
            return
        await _json(send, 200, {**base, "object": "chat.completion", "usage": usage,
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant",
                                                         "content": text}}]})


async def _json(send: Any, status: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

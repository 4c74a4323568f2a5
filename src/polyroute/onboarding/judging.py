"""A judge backend over plain HTTP: the configured backend that grades answers with no reference.

Why not the ``openai`` client: it is a test dependency only; one synchronous POST per judged
answer is all a judge needs (grading runs off the event loop, in a worker thread).
"""

from __future__ import annotations

import httpx

from polyroute.config import BackendConfig
from polyroute.data.outcomes import ModelInfo
from polyroute.grading import JudgeGrader, JudgeReply


def http_judge(backend: BackendConfig, api_key: str | None, max_tokens: int = 256
               ) -> JudgeGrader:
    """A :class:`JudgeGrader` that sends its rubric prompts to ``backend`` (its prices count)."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.Client(base_url=backend.base_url, headers=headers, timeout=backend.timeout,
                          trust_env=False, follow_redirects=False)

    def send(prompt: str) -> JudgeReply:
        r = client.post("chat/completions", json={
            "model": backend.upstream_model, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": prompt}]})
        r.raise_for_status()
        body = r.json()
        usage = body.get("usage") or {}
        text = (body.get("choices") or [{}])[0].get("message", {}).get("content") or ""
        return JudgeReply(text, int(usage.get("prompt_tokens") or 0),
                          int(usage.get("completion_tokens") or 0))

    info = ModelInfo(backend.name, backend.input_price_per_mtok, backend.output_price_per_mtok)
    return JudgeGrader(send, info)

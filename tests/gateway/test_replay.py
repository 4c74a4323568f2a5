"""The replay stand-in answers so that grading its answer gives the impersonated model's score."""

from __future__ import annotations

import numpy as np
import pytest
from openai import OpenAI
from replay import ReplayBackend, bundled
from standin import ServerThread


@pytest.mark.parametrize("model", ["llama-3.3-nemotron-super-49b-v1", "qwen2.5-7b-instruct"])
def test_grading_the_replayed_answer_gives_the_recorded_score(model):
    outcomes, refs, _ = bundled()
    replay = ReplayBackend(model)
    rng = np.random.default_rng(1)
    checked = 0
    for i in rng.choice(outcomes.n_prompts, 150, replace=False):
        ref = refs[outcomes.prompt_ids[i]]
        if ref.metric == "code_eval":  # no solutions ship: a right program cannot be written
            continue
        text, score = replay.answer(outcomes.prompts[i])
        if not ref.usable:
            assert score is None
            continue
        assert score == pytest.approx(outcomes.quality[i, replay.column], abs=1e-9), \
            (ref.metric, ref.ground_truth, text)
        checked += 1
    assert checked > 100 and replay.disagreements == 0


def test_replay_serves_openai_clients_with_usage_streamed_or_not():
    outcomes, refs, _ = bundled()
    replay = ReplayBackend("gemma-2-9b-it")
    row = next(i for i, p in enumerate(outcomes.prompt_ids) if refs[p].metric == "GSM8K")
    with ServerThread(replay) as server:
        client = OpenAI(base_url=f"{server.url}/v1", api_key="x")
        messages = [{"role": "user", "content": outcomes.prompts[row]}]
        done = client.chat.completions.create(model="m", messages=messages)
        assert done.choices[0].message.content == replay.answer(outcomes.prompts[row])[0]
        assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0
        parts = list(client.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
        assert text == done.choices[0].message.content and parts[-1].usage is not None
        other = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hello there, who are you?"}])
        assert other.choices[0].message.content == "I am gemma-2-9b-it."
    assert replay.requests == 3

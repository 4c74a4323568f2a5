"""Decisions on the event loop: one batch per loop turn, the same answers as the worker threads,
chosen automatically for a featurizer that runs no model."""

from __future__ import annotations

import asyncio
import threading

import pytest
from gateway_world import MATH_PROMPT, POETRY_PROMPT, base_config, make_outcomes

from polyroute import Pipeline
from polyroute.config import validate_config
from polyroute.gateway.routing import Decider
from polyroute.policies import TradeoffPolicy

URLS = {"alpha": "http://127.0.0.1:1/v1", "beta": "http://127.0.0.1:1/v1",
        "gamma": "http://127.0.0.1:1/v1"}


@pytest.fixture(scope="module")
def pipeline(router_dir) -> Pipeline:
    return Pipeline.load(router_dir, cache=False)


def backends(router_dir, tmp_path):
    return validate_config(base_config(router_dir, tmp_path / "s.sqlite", URLS)).backends


class CountingEncoder:
    """Wraps a featurizer and records the size of every batch it encodes, and the thread."""

    def __init__(self, inner) -> None:
        self.inner, self.batches, self.threads = inner, [], set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, **kwargs):
        self.batches.append(len(texts))
        self.threads.add(threading.current_thread().name)
        return self.inner.encode(texts, **kwargs)


def test_auto_decides_on_the_loop_for_a_light_featurizer_only(pipeline, router_dir, tmp_path):
    assert Decider(pipeline, backends(router_dir, tmp_path), decide_on="auto").on_loop
    assert not Decider(pipeline, backends(router_dir, tmp_path), decide_on="thread").on_loop
    heavy = Pipeline.load(router_dir, cache=False)
    heavy._featurizer = CountingEncoder(heavy.featurizer)
    heavy.featurizer.light = False  # as a transformer declares (by not saying light)
    assert not Decider(heavy, backends(router_dir, tmp_path), decide_on="auto").on_loop
    assert Decider(heavy, backends(router_dir, tmp_path), decide_on="loop").on_loop


def test_decisions_asked_in_one_loop_turn_are_one_batch_on_the_loop(router_dir, tmp_path):
    pipe = Pipeline.load(router_dir, cache=False)
    texts = [MATH_PROMPT, POETRY_PROMPT] * 5
    policy = TradeoffPolicy(0.0)
    threaded = Decider(pipe, backends(router_dir, tmp_path), max_batch=4, decide_on="thread")
    expected = threaded.decide_now(texts, policy)
    pipe._featurizer = counting = CountingEncoder(pipe.featurizer)
    decider = Decider(pipe, backends(router_dir, tmp_path), max_batch=4, decide_on="loop")
    decider.start()  # starts no thread
    assert not [t for t in threading.enumerate() if t.name.startswith("polyroute-decider")]

    async def run():
        counting.batches.clear()
        return await asyncio.gather(*(decider.decide(t, policy) for t in texts))

    results = asyncio.run(run())
    decider.stop()
    assert [r.candidates for r in results] == expected
    assert counting.batches == [4, 4, 2]  # one turn's ten, in batches of at most max_batch
    assert counting.threads == {threading.current_thread().name}
    assert all(r.decision_ms >= 0 and r.analysis is not None for r in results)


def test_an_encoder_failure_on_the_loop_reaches_every_waiting_request(router_dir, tmp_path):
    pipe = Pipeline.load(router_dir, cache=False)
    decider = Decider(pipe, backends(router_dir, tmp_path), decide_on="loop")

    def broken(texts, **kwargs):
        raise RuntimeError("encoder down")

    pipe._featurizer = CountingEncoder(pipe.featurizer)
    pipe.featurizer.encode = broken

    async def run():
        return await asyncio.gather(*(decider.decide(t, TradeoffPolicy(0.0))
                                      for t in (MATH_PROMPT, POETRY_PROMPT)),
                                    return_exceptions=True)

    assert [str(e) for e in asyncio.run(run())] == ["encoder down", "encoder down"]


def test_an_online_router_learns_on_the_loop_after_the_decisions_asked_before(router_dir,
                                                                              tmp_path):
    bandit = Pipeline("bandit", featurizer="tfidf", cache=False,
                      router_params={"n_components": 8}).fit(make_outcomes())
    decider = Decider(bandit, backends(router_dir, tmp_path), decide_on="auto")
    assert decider.on_loop and decider.learns_online
    order: list[str] = []
    original, decide_batch = bandit.router.learn_one, decider._decide_batch

    def recording(row, model, quality):
        order.append(f"learn {model}")
        return original(row, model, quality)

    def deciding(jobs):
        order.append(f"decide {len(jobs)}")
        return decide_batch(jobs)

    bandit.router.learn_one, decider._decide_batch = recording, deciding

    async def run():
        first = asyncio.ensure_future(decider.decide(MATH_PROMPT, TradeoffPolicy(0.0)))
        await asyncio.sleep(0)  # the decision is asked first, then the feedback arrives
        ok = await decider.learn(MATH_PROMPT, "alpha", 1.0)
        return ok, await first

    ok, result = asyncio.run(run())
    assert ok and result.candidates
    assert [o for o in order if o != "decide 0"] == ["decide 1", "learn alpha"]

"""Routing decisions off the event loop: batching, prices, restrictions, router/backend checks."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from gateway_world import MATH_PROMPT, POETRY_PROMPT, base_config

from polyroute import Pipeline
from polyroute.config import validate_config
from polyroute.errors import ConfigError
from polyroute.gateway.routing import Decider, check_backends, load_pipeline
from polyroute.policies import FloorPolicy, TradeoffPolicy

URLS = {n: f"http://127.0.0.1:9/{n}" for n in ("alpha", "beta", "gamma")}


@pytest.fixture(scope="module")
def pipeline(router_dir) -> Pipeline:
    return Pipeline.load(router_dir, cache=False)


def config(router_dir, tmp_path, **changes):
    raw = base_config(router_dir, tmp_path / "s.sqlite", URLS)
    raw.update(changes)
    return validate_config(raw)


def decided_concurrently(decider, texts, policy, while_running=lambda: None):
    """Start ``decider``, decide ``texts`` all at once (calling ``while_running`` first), stop."""

    async def run():
        return await asyncio.gather(*(decider.decide(t, policy) for t in texts))

    decider.start()
    try:
        while_running()
        return asyncio.run(run())
    finally:
        decider.stop()


def test_concurrent_decisions_are_batched_and_equal_single_ones(pipeline, router_dir, tmp_path):
    cfg = config(router_dir, tmp_path)
    decider = Decider(pipeline, cfg.backends, max_batch=8)
    texts = [MATH_PROMPT, POETRY_PROMPT] * 6
    policy = TradeoffPolicy(0.0)
    expected = decider.decide_now(texts, policy)
    results = decided_concurrently(decider, texts, policy)
    assert [r.candidates for r in results] == expected
    assert [r.candidates[0].model for r in results[:2]] == ["alpha", "beta"]


def test_mixed_lengths_are_embedded_in_groups_in_the_right_order(pipeline, router_dir,
                                                                 tmp_path):
    decider = Decider(pipeline, config(router_dir, tmp_path).backends)
    texts = [MATH_PROMPT, POETRY_PROMPT * 12, POETRY_PROMPT, MATH_PROMPT * 40, "2 + 2?"]
    together = decider.estimates(texts)
    for i, text in enumerate(texts):
        alone = decider.estimates([text])
        np.testing.assert_allclose(together.quality[i], alone.quality[0], atol=1e-6)
        np.testing.assert_allclose(together.cost[i], alone.cost[0])


def test_allowed_models_restrict_the_candidates(pipeline, router_dir, tmp_path):
    decider = Decider(pipeline, config(router_dir, tmp_path).backends)
    [ranked] = decider.decide_now([MATH_PROMPT], FloorPolicy(0.9), allowed=("beta", "gamma"))
    assert {c.model for c in ranked} == {"beta", "gamma"}


def test_backend_prices_replace_the_training_prices(pipeline, router_dir, tmp_path):
    cfg = config(router_dir, tmp_path)
    same = Decider(pipeline, cfg.backends).estimates([MATH_PROMPT])
    raw = base_config(router_dir, tmp_path / "s.sqlite", URLS)
    raw["backends"][0]["output_price_per_mtok"] *= 10  # alpha's output is 10x dearer
    dearer = Decider(pipeline, validate_config(raw).backends).estimates([MATH_PROMPT])
    assert dearer.cost[0, 0] > 5 * same.cost[0, 0]
    assert dearer.cost[0, 1] == pytest.approx(same.cost[0, 1])


def test_router_models_without_backend_are_dropped(pipeline, router_dir, tmp_path):
    raw = base_config(router_dir, tmp_path / "s.sqlite", {**URLS, "delta": "http://x:1"})
    raw["backends"] = [b for b in raw["backends"] if b["name"] != "gamma"]
    del raw["profiles"]["polyroute-no-alpha"]
    cfg = validate_config(raw)
    warnings = check_backends(pipeline.models, cfg)
    assert any("gamma" in w for w in warnings) and any("delta" in w for w in warnings)
    decider = Decider(pipeline, cfg.backends)
    assert decider.models == ("alpha", "beta")
    [ranked] = decider.decide_now([MATH_PROMPT], TradeoffPolicy(100.0))
    assert [c.model for c in ranked][0] != "gamma"


def test_router_knowing_no_backend_still_starts_and_says_how_to_onboard(pipeline, router_dir,
                                                                         tmp_path):
    # Was a ConfigError; a gateway must start with backends it has no outcome data for.
    raw = base_config(router_dir, tmp_path / "s.sqlite", {"delta": "http://x:1"})
    raw["profiles"] = {}
    warnings = check_backends(pipeline.models, validate_config(raw))
    assert any("no backend is named after a model the router knows" in w for w in warnings)
    assert any("delta" in w and "polyroute onboard" in w for w in warnings)
    assert Decider(pipeline, validate_config(raw).backends).models == ()


def test_a_backend_like_a_known_model_borrows_its_estimates(pipeline, router_dir, tmp_path):
    raw = base_config(router_dir, tmp_path / "s.sqlite",
                      {"alpha": "http://x:1", "delta": "http://x:2"})
    raw["backends"][1]["like"] = "beta"
    raw["backends"][1]["input_price_per_mtok"] = 9.0
    raw["profiles"] = {}
    cfg = validate_config(raw)
    assert any("delta (like beta)" in w for w in check_backends(pipeline.models, cfg))
    decider = Decider(pipeline, cfg.backends)
    assert decider.models == ("alpha", "delta") and decider.borrowed == {"delta": "beta"}
    est = decider.estimates([POETRY_PROMPT])
    assert est.quality[0, 1] == pytest.approx(pipeline.estimate([POETRY_PROMPT]).quality[0, 1])
    [ranked] = decider.decide_now([POETRY_PROMPT], TradeoffPolicy(0.0))
    assert ranked[0].model == "delta" and ranked[0].borrowed_from == "beta"
    assert ranked[1].borrowed_from is None


def test_like_naming_an_unknown_model_is_a_config_error(pipeline, router_dir, tmp_path):
    raw = base_config(router_dir, tmp_path / "s.sqlite", {"delta": "http://x:1"})
    raw["backends"][0]["like"] = "nobody"
    raw["profiles"] = {}
    with pytest.raises(ConfigError, match=r"backends\[0\]\.like: 'nobody' is not a model"):
        check_backends(pipeline.models, validate_config(raw))


def test_featurizer_mismatch_is_a_config_error(router_dir, tmp_path):
    cfg = config(router_dir, tmp_path, router={"path": str(router_dir), "featurizer": "minilm"})
    with pytest.raises(ConfigError, match="trained with 'tfidf'"):
        load_pipeline(cfg.router)


def test_router_can_be_trained_at_start_up(tmp_path, router_dir):
    from gateway_world import make_outcomes

    from polyroute.data import save_long_jsonl

    data = save_long_jsonl(make_outcomes(), tmp_path / "outcomes.jsonl")
    cfg = config(router_dir, tmp_path, router={
        "train": {"data": str(data), "router": "knn", "params": {"k": 5},
                  "save_to": str(tmp_path / "trained")}, "featurizer": "tfidf"})
    pipe = load_pipeline(cfg.router)
    assert pipe.models == ("alpha", "beta", "gamma")
    assert (tmp_path / "trained" / "polyroute.json").is_file()


def test_an_analysis_is_the_decisions_embedding_and_a_decision_can_rank_on_it(
        pipeline, router_dir, tmp_path):
    cfg = config(router_dir, tmp_path)
    decider = Decider(pipeline, cfg.backends)
    texts = [MATH_PROMPT, POETRY_PROMPT, "x" * 500]  # two length groups, rows back in order
    policy = FloorPolicy(0.9)

    async def run():
        analyses = await asyncio.gather(*(decider.analyse(t) for t in texts))
        ranked = [await decider.decide(t, policy, ("beta", "gamma"), analysis=a)
                  for t, a in zip(texts, analyses, strict=True)]
        plain = [await decider.decide(t, policy, ("beta", "gamma")) for t in texts]
        return analyses, ranked, plain

    decider.start()
    try:
        analyses, ranked, plain = asyncio.run(run())
    finally:
        decider.stop()
    features = pipeline.featurizer.encode(texts)
    for i, a in enumerate(analyses):
        np.testing.assert_allclose(a.embedding, features[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.estimates.quality[0], decider.estimates([texts[i]]).quality[0])
        assert ranked[i].candidates == plain[i].candidates
        assert ranked[i].analysis is a
        np.testing.assert_allclose(plain[i].analysis.embedding, a.embedding, rtol=1e-5, atol=1e-6)


def test_several_workers_decide_like_one_and_all_stop(pipeline, router_dir, tmp_path):
    import threading

    cfg = config(router_dir, tmp_path)
    decider = Decider(pipeline, cfg.backends, max_batch=2, workers=3)
    texts = [MATH_PROMPT, POETRY_PROMPT] * 8
    policy = TradeoffPolicy(0.0)
    expected = decider.decide_now(texts, policy)
    names: set[str] = set()

    def three_workers():
        names.update(t.name for t in threading.enumerate()
                     if t.name.startswith("polyroute-decider"))
        assert len(names) == 3

    results = decided_concurrently(decider, texts, policy, three_workers)
    assert [r.candidates for r in results] == expected
    assert not [t for t in threading.enumerate() if t.name in names]


def test_a_router_that_learns_online_gets_exactly_one_worker(router_dir, tmp_path):
    from gateway_world import make_outcomes

    bandit = Pipeline("bandit", featurizer="tfidf", cache=False,
                      router_params={"n_components": 8}).fit(make_outcomes())
    decider = Decider(bandit, config(router_dir, tmp_path).backends, workers=4)
    assert decider.workers == 1

"""Item-response-theory router: planted abilities are recovered, and a new model can be added from
a few of its answers, chosen so that they carry information (adaptive beats random).

The IRT world
-------------
Prompt features are 4-d: ``x[:2]`` is the prompt's topic, ``x[2]`` its difficulty, ``x[3]``
noise. A model with ability ``a`` answers a prompt correctly with probability
``sigmoid(a · topic − 4·difficulty)``. Models: ``T1`` strong on topic 1, ``T2`` on topic 2, ``G``
middling on both, ``W`` weak. The new model ``N`` is strong on topic 1 and bad on topic 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyroute.data import ModelInfo, Outcomes
from polyroute.errors import RouterError
from polyroute.routers import Router, make_router

ABILITIES = {"T1": (4.0, -1.0), "T2": (-1.0, 4.0), "G": (1.5, 1.5), "W": (-1.0, -1.0),
             "S": (3.0, 3.0), "T1b": (3.0, 0.0)}
NEW = ("N", (4.0, -3.0))


def probability(x: np.ndarray, ability: tuple[float, float]) -> np.ndarray:
    z = x[:, :2] @ np.asarray(ability) - 4.0 * x[:, 2]
    return 1.0 / (1.0 + np.exp(-z))


def prompts(n: int, rng: np.random.Generator, easy_share: float = 0.0) -> np.ndarray:
    """``n`` prompt features; ``easy_share`` of them are so easy every model solves them."""
    topic = rng.normal(size=(n, 2))
    difficulty = rng.normal(0.0, 0.3, size=n)
    easy = rng.random(n) < easy_share
    difficulty[easy] = -3.0  # logit ≥ +12 - |a·t|: almost surely right, whatever the model
    return np.column_stack([topic, difficulty, rng.normal(0.0, 0.1, n)]).astype(np.float32)


def table(x: np.ndarray, names: list[str], rng: np.random.Generator) -> Outcomes:
    p = np.column_stack([probability(x, ABILITIES[m]) for m in names])
    q = (rng.random(p.shape) < p).astype(float)
    n = len(x)
    return Outcomes(tuple(f"p{i}" for i in range(n)), tuple(f"prompt {i}" for i in range(n)),
                    ("t",) * n, tuple(ModelInfo(m, 1.0, 1.0) for m in names), q,
                    np.ones(q.shape))


@pytest.fixture(scope="module")
def world() -> tuple[Router, np.ndarray]:
    """An IRT router fitted on 800 prompts × the six known models (2-d topics)."""
    rng = np.random.default_rng(0)
    x = prompts(800, rng)
    router = make_router("irt", dim=2, epochs=600, lr=0.03, dropout=0.0, weight_decay=0.0)
    router.fit(table(x, list(ABILITIES), rng), x)
    return router, x


def test_planted_abilities_are_recovered(world) -> None:
    router, _ = world
    x = prompts(400, np.random.default_rng(1))
    est = router.estimate(x).quality
    truth = np.column_stack([probability(x, a) for a in ABILITIES.values()])
    assert np.mean(np.abs(est - truth)) < 0.08
    topic1 = x[:, 0] > x[:, 1] + 1  # clearly topic-1 prompts: T1 beats T2 there
    assert np.mean(est[topic1, 0] > est[topic1, 1]) > 0.95
    assert np.mean(est[~topic1 & (x[:, 1] > x[:, 0] + 1), 1] > est[~topic1 & (
        x[:, 1] > x[:, 0] + 1), 0]) > 0.95


def test_prompt_parameters_reproduce_the_estimates(world) -> None:
    router, x = world
    design, difficulty = router.prompt_parameters(x[:10])
    assert design.shape == (10, 3) and np.all(design[:, -1] == 1.0)
    logits = design @ router.ability_.T - difficulty[:, None]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), router.estimate(x[:10]).quality,
                               atol=1e-12)


def new_model_error(router: Router, strategy: str, budget: int, seed: int) -> float:
    """Mean absolute error of the added model's estimated probability on informative prompts,
    after asking ``budget`` prompts of a pool that is 90 % trivially easy."""
    rng = np.random.default_rng(100 + seed)
    pool = prompts(1000, rng, easy_share=0.9)
    answers = (rng.random(len(pool)) < probability(pool, NEW[1])).astype(float)
    r = _copy(router)
    asked = r.add_model(NEW[0], lambda idx: answers[idx], pool, budget, strategy=strategy,
                        batch_size=5, random_state=seed)
    assert len(asked) == budget == len(set(asked.tolist()))
    assert r.models_[-1] == NEW[0]
    test = prompts(400, np.random.default_rng(7))
    return float(np.mean(np.abs(r.estimate(test).quality[:, -1] - probability(test, NEW[1]))))


def _copy(router: Router) -> Router:
    """An independent copy of a fitted router (``add_model`` changes the router in place)."""
    clone = make_router("irt", **router.get_params())
    for k, v in vars(router).items():
        if k.endswith("_"):
            setattr(clone, k, v.copy() if hasattr(v, "copy") else v)
    return clone


def test_adaptive_questions_beat_random_ones(world) -> None:
    router, _ = world
    adaptive = new_model_error(router, "fisher", 30, seed=0)
    variance = new_model_error(router, "variance", 30, seed=0)
    randomly = np.mean([new_model_error(router, "random", 30, seed=s) for s in range(4)])
    # Random questions are mostly trivially easy ones, which say nothing about the new model.
    assert adaptive < 0.12
    assert adaptive < randomly - 0.03
    assert variance < randomly - 0.03


def test_added_model_is_routed_where_it_is_strong(world) -> None:
    router, _ = world
    r = _copy(router)
    pool = prompts(600, np.random.default_rng(3))
    answers = (np.random.default_rng(4).random(600) < probability(pool, NEW[1])).astype(float)
    r.add_model(NEW[0], lambda idx: answers[idx], pool, 60)
    test = prompts(300, np.random.default_rng(5))
    est = r.estimate(test).quality
    assert est.shape == (300, len(ABILITIES) + 1)
    topic1, topic2 = test[:, 0] > test[:, 1] + 1, test[:, 1] > test[:, 0] + 1
    assert est[topic1, -1].mean() > est[topic2, -1].mean() + 0.4
    # The known models' estimates do not move when a model is added.
    np.testing.assert_array_equal(est[:, :-1], router.estimate(test).quality)


def test_add_model_from_answers_matches_the_truth(world) -> None:
    router, _ = world
    r = _copy(router)
    pool = prompts(800, np.random.default_rng(8))
    answers = (np.random.default_rng(9).random(800) < probability(pool, NEW[1])).astype(float)
    answers[::10] = np.nan  # failed calls carry no information and are skipped
    r.add_model_from_answers(NEW[0], pool, answers)
    test = prompts(300, np.random.default_rng(10))
    assert np.mean(np.abs(r.estimate(test).quality[:, -1] - probability(test, NEW[1]))) < 0.08


def test_added_model_survives_save_and_load(world, tmp_path: Path) -> None:
    router, x = world
    r = _copy(router)
    answers = (np.random.default_rng(11).random(len(x)) < probability(x, NEW[1])).astype(float)
    r.add_model(NEW[0], lambda idx: answers[idx], x, 20, strategy="variance")
    r.save(tmp_path)
    loaded = Router.load(tmp_path)
    assert loaded.models_ == [*ABILITIES, NEW[0]]
    np.testing.assert_array_equal(loaded.estimate(x).quality, r.estimate(x).quality)
    # The prior for a further model still comes from the models fitted with the data.
    np.testing.assert_allclose(loaded.ability_prior()[0], router.ability_prior()[0])


def test_add_model_is_deterministic(world) -> None:
    router, x = world
    answers = (np.random.default_rng(12).random(len(x)) < probability(x, NEW[1])).astype(float)
    runs = [_copy(router).add_model(NEW[0], lambda idx: answers[idx], x, 25, strategy=s,
                                    random_state=3) for s in ("fisher", "random", "random")]
    np.testing.assert_array_equal(runs[1], runs[2])
    assert not np.array_equal(np.sort(runs[0]), np.sort(runs[1]))


@pytest.mark.parametrize("call, message", [
    (lambda r, x: r.add_model("T1", lambda i: np.ones(len(i)), x, 5), "already known"),
    (lambda r, x: r.add_model("N", lambda i: np.ones(len(i)), x, 0), "budget"),
    (lambda r, x: r.add_model("N", lambda i: np.ones(len(i)), x[:3], 5), "budget"),
    (lambda r, x: r.add_model("N", lambda i: np.ones(len(i)), x, 5, strategy="best"),
     "unknown strategy"),
    (lambda r, x: r.add_model("N", lambda i: np.ones(len(i) + 1), x, 5), "returned"),
    (lambda r, x: r.add_model("N", lambda i: np.full(len(i), 2.0), x, 5), r"\[0, 1\]"),
    (lambda r, x: r.add_model("N", lambda i: np.ones(len(i)), x[:, :3], 5), "shape"),
    (lambda r, x: r.add_model_from_answers("N", x[:5], np.ones(4)), "quality values"),
])
def test_user_errors_are_router_errors(world, call, message: str) -> None:
    router, x = world
    r = _copy(router)
    with pytest.raises(RouterError, match=message):
        call(r, x)
    assert r.models_ == list(ABILITIES)  # nothing was added


def test_hidden_layer_variant_fits_and_round_trips(two_cluster, tmp_path: Path) -> None:
    router = make_router("irt", hidden=8, epochs=50).fit(two_cluster.outcomes,
                                                         two_cluster.features)
    router.save(tmp_path)
    loaded = Router.load(tmp_path)
    np.testing.assert_allclose(loaded.estimate(two_cluster.features).quality,
                               router.estimate(two_cluster.features).quality)

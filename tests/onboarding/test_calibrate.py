"""Onboarding a new model from a few answers, on made-up outcomes whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.data import ModelInfo, Outcomes
from polyroute.errors import DataError
from polyroute.onboarding import (
    IMPUTATION_METHODS,
    add_answers,
    choose_prompts,
    impute_quality,
    onboard,
    routing_value_of_tasks,
)

TASKS = ("alpha", "beta", "gamma", "delta")
#: Per-task accuracy of four reference models: strengths differ by task.
ACCURACY = np.array([[0.9, 0.2, 0.5, 0.7],
                     [0.3, 0.8, 0.6, 0.2],
                     [0.6, 0.6, 0.1, 0.9],
                     [0.1, 0.1, 0.9, 0.4]])


def make_world(n_per_task: int = 150, seed: int = 0) -> tuple[Outcomes, np.ndarray]:
    """Outcomes of four reference models plus the hidden 0/1 column of a new model that copies
    reference model 1 on every prompt (so it is as good as model 1 on every task)."""
    rng = np.random.default_rng(seed)
    tasks = [t for t in TASKS for _ in range(n_per_task)]
    codes = np.repeat(np.arange(len(TASKS)), n_per_task)
    difficulty = rng.normal(0, 1.0, len(codes))
    logits = np.log(ACCURACY / (1 - ACCURACY))[codes] - difficulty[:, None]
    quality = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(float)
    models = tuple(ModelInfo(f"m{j}", 0.1 * (j + 1), 0.2 * (j + 1)) for j in range(4))
    n = len(tasks)
    outcomes = Outcomes(prompt_ids=tuple(f"p{i}" for i in range(n)),
                        prompts=tuple(f"question {i} " + "x" * (i % 7) for i in range(n)),
                        tasks=tuple(tasks), models=models, quality=quality,
                        cost=np.full((n, 4), 1e-4))
    return outcomes, quality[:, 1].copy()


NEW = ModelInfo("newbie", 0.5, 1.5)


def test_stratified_and_informative_choices_cover_every_task() -> None:
    outcomes, _ = make_world()
    for strategy in ("stratified", "informative"):
        rows = choose_prompts(outcomes, 20, strategy, random_state=3)
        assert len(rows) == len(set(rows.tolist())) == 20
        counts = {t: sum(outcomes.tasks[i] == t for i in rows) for t in TASKS}
        assert min(counts.values()) >= 1, (strategy, counts)
        if strategy == "stratified":  # equal task sizes: an equal share each
            assert set(counts.values()) == {5}


def test_informative_covers_more_score_patterns_than_random() -> None:
    outcomes, _ = make_world()
    profiles = [tuple(row) + (task,) for row, task in zip(outcomes.quality, outcomes.tasks,
                                                          strict=True)]

    def patterns(strategy: str, seed: int) -> int:
        return len({profiles[i] for i in choose_prompts(outcomes, 40, strategy,
                                                        random_state=seed)})

    for seed in range(3):
        assert patterns("informative", seed) > patterns("random", seed)


def test_choice_is_seeded_and_capped() -> None:
    outcomes, _ = make_world(n_per_task=5)
    a = choose_prompts(outcomes, 7, "informative", random_state=1)
    assert np.array_equal(a, choose_prompts(outcomes, 7, "informative", random_state=1))
    assert np.array_equal(choose_prompts(outcomes, 99, "random"), np.arange(outcomes.n_prompts))
    with pytest.raises(DataError, match="strategy"):
        choose_prompts(outcomes, 5, "clever")
    with pytest.raises(DataError, match="at least 1"):
        choose_prompts(outcomes, 0)


@pytest.mark.parametrize("method", IMPUTATION_METHODS)
def test_a_copy_of_a_model_gets_that_models_task_accuracy(method: str) -> None:
    outcomes, hidden = make_world(n_per_task=400)
    rows = choose_prompts(outcomes, 400, "stratified", random_state=0)  # 100 a task
    column = impute_quality(outcomes, rows, hidden[rows], method)
    assert np.array_equal(column[rows], hidden[rows])
    codes = np.array([TASKS.index(t) for t in outcomes.tasks])
    rest = np.setdiff1d(np.arange(outcomes.n_prompts), rows)
    for k in range(len(TASKS)):
        cells = rest[codes[rest] == k]
        assert abs(column[cells].mean() - hidden[cells].mean()) < 0.1, (method, TASKS[k])


def test_collaborative_terms_find_the_model_the_new_one_copies() -> None:
    outcomes, hidden = make_world()
    rows = choose_prompts(outcomes, 100, "stratified", random_state=0)
    rest = np.setdiff1d(np.arange(outcomes.n_prompts), rows)
    error = {m: float(np.mean((impute_quality(outcomes, rows, hidden[rows], m)[rest]
                               - hidden[rest]) ** 2)) for m in IMPUTATION_METHODS}
    # The per-prompt copy is visible only through the reference models' scores.
    assert error["logistic"] < 0.5 * error["task_mean"]
    assert error["ridge"] < 0.5 * error["task_mean"]


def test_failed_answers_are_imputed_not_recorded() -> None:
    outcomes, hidden = make_world()
    rows = choose_prompts(outcomes, 60, "stratified", random_state=0)
    values = hidden[rows].copy()
    values[:10] = np.nan
    answers = {outcomes.prompt_ids[i]: v for i, v in zip(rows, values, strict=True)}
    result = add_answers(outcomes, NEW, answers)
    j = result.outcomes.model_names.index("newbie")
    assert result.imputed[rows[:10], j].all() and not result.imputed[rows[10:], j].any()
    assert np.all(np.isfinite(result.outcomes.quality[:, j]))
    assert np.isnan(result.observed().quality[rows[:10], j]).all()
    assert np.array_equal(result.observed().quality[rows[10:], j], hidden[rows[10:]])
    assert len(result.asked["newbie"]) == 60  # failed calls were paid for too
    with pytest.raises(DataError, match="every call failed"):
        impute_quality(outcomes, rows, np.full(len(rows), np.nan))


def test_joins_go_by_prompt_id_and_model_name_not_position() -> None:
    outcomes, hidden = make_world()
    rows = choose_prompts(outcomes, 80, "stratified", random_state=0)
    answers = {outcomes.prompt_ids[i]: hidden[i] for i in rows}
    base = add_answers(outcomes, NEW, answers)
    perm = np.random.default_rng(7).permutation(outcomes.n_prompts)
    shuffled = outcomes.subset(perm).select_models(["m3", "m1", "m0", "m2"])
    reversed_answers = dict(reversed(list(answers.items())))
    other = add_answers(shuffled, NEW, reversed_answers)
    want = dict(zip(base.outcomes.prompt_ids, base.outcomes.quality[:, -1], strict=True))
    got = dict(zip(other.outcomes.prompt_ids, other.outcomes.quality[:, -1], strict=True))
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[p] for p in want], list(want.values()), atol=1e-6)
    with pytest.raises(DataError, match="not in the outcomes"):
        add_answers(outcomes, NEW, {"nope": 1.0})
    with pytest.raises(DataError, match="already in the outcomes"):
        add_answers(outcomes, ModelInfo("m0", 0, 0), answers)


def test_onboard_asks_once_and_prices_the_new_column() -> None:
    outcomes, hidden = make_world()
    asked: list[np.ndarray] = []

    def ask(rows: np.ndarray) -> np.ndarray:
        asked.append(rows)
        return hidden[rows]

    result = onboard(outcomes, NEW, ask, n=40, strategy="informative", random_state=2)
    assert len(asked) == 1 and len(asked[0]) == 40
    table = result.outcomes
    assert table.model_names[-1] == "newbie" and table.n_prompts == outcomes.n_prompts
    j = table.model_names.index("newbie")
    text = outcomes.prompts[0]
    want = (np.ceil(len(text) / 4) * 0.5 + 256 * 1.5) / 1e6
    assert table.cost[0, j] == pytest.approx(want)
    assert result.asking_cost("newbie") == pytest.approx(table.cost[asked[0], j].sum())
    assert not result.imputed[:, :4].any() and result.imputed[:, j].sum() == outcomes.n_prompts - 40


def test_second_model_is_imputed_from_recorded_columns_only() -> None:
    outcomes, hidden = make_world()
    rows = choose_prompts(outcomes, 50, "stratified", random_state=0)
    first = add_answers(outcomes, NEW, {outcomes.prompt_ids[i]: hidden[i] for i in rows})
    second = add_answers(first.outcomes, ModelInfo("other", 0.1, 0.1),
                         {outcomes.prompt_ids[i]: hidden[i] for i in rows},
                         imputed=first.imputed)
    direct = add_answers(outcomes, ModelInfo("other", 0.1, 0.1),
                         {outcomes.prompt_ids[i]: hidden[i] for i in rows})
    np.testing.assert_allclose(second.outcomes.quality[:, -1], direct.outcomes.quality[:, -1])
    assert second.imputed[:, -2].sum() == first.imputed[:, -1].sum()


def test_routers_train_on_the_onboarded_table() -> None:
    from polyroute.routers import make_router

    outcomes, hidden = make_world()
    result = onboard(outcomes, NEW, lambda r: hidden[r], n=60)
    features = np.eye(len(TASKS))[[TASKS.index(t) for t in outcomes.tasks]]
    est = make_router("knn", k=20).fit(result.outcomes, features).estimate(features[:3])
    assert est.models[-1] == "newbie" and est.quality.shape == (3, 5)


def test_routing_value_is_highest_where_the_decision_is_open() -> None:
    outcomes, _ = make_world()
    codes = np.array([TASKS.index(t) for t in outcomes.tasks])
    best = ACCURACY.max(axis=1)
    # The new model is far ahead of every reference model on "alpha" and "beta", level with
    # the best on "gamma", hopeless on "delta": only "gamma" is worth more answers.
    level = np.array([1.0, 1.0, 0.0, 0.0])
    level[2] = outcomes.quality[codes == 2].mean(axis=0).max()
    column = np.clip(np.array([min(best[0] + 0.6, 0.99), min(best[1] + 0.6, 0.99), level[2],
                               0.01]), 0, 1)[codes]
    answered = {t: 10 for t in TASKS}
    value = routing_value_of_tasks(outcomes, NEW, column, answered)
    assert max(value, key=value.get) == "gamma"
    assert value["delta"] < value["gamma"] and value["alpha"] < value["gamma"]
    fewer = routing_value_of_tasks(outcomes, NEW, column, {**answered, "gamma": 100})
    assert fewer["gamma"] < value["gamma"]  # more answers already, less left to learn


def test_adaptive_onboarding_spends_the_second_half_where_it_matters() -> None:
    outcomes, hidden = make_world()
    codes = np.array([TASKS.index(t) for t in outcomes.tasks])
    asked: list[np.ndarray] = []

    def ask(rows: np.ndarray) -> np.ndarray:
        asked.append(rows)
        return hidden[rows]

    result = onboard(outcomes, NEW, ask, n=80, strategy="adaptive", random_state=0)
    assert len(asked) == 2 and len(np.concatenate(asked)) == 80
    assert len(set(np.concatenate(asked).tolist())) == 80  # never the same prompt twice
    assert len(result.asked["newbie"]) == 80
    first = np.bincount(codes[asked[0]], minlength=4)
    assert first.min() >= 1  # the first half covers every task
    with pytest.raises(DataError, match="first_share"):
        onboard(outcomes, NEW, ask, n=10, strategy="adaptive", first_share=0)


def make_factor_world(ability: float, n_tasks: int = 10, n_per_task: int = 120,
                      strength: tuple[int, float] | None = None,
                      seed: int = 0) -> tuple[Outcomes, np.ndarray, np.ndarray]:
    """Eight reference models whose per-task log-odds are a task mean plus ability × a task
    loading (one general factor), and the hidden column of a new model of ``ability``; with
    ``strength = (task, boost)`` it is ``boost`` log-odds better on that task than the factor
    says. Returns the outcomes, the hidden column and its true per-task accuracy."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, n_tasks)
    loading = rng.uniform(0.5, 1.5, n_tasks)
    abilities = np.linspace(-2.0, 2.0, 8)
    codes = np.repeat(np.arange(n_tasks), n_per_task)

    def column(a: float, boost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 1 / (1 + np.exp(-(base + a * loading + boost)))
        return (rng.random(len(codes)) < p[codes]).astype(float), p

    zero = np.zeros(n_tasks)
    quality = np.column_stack([column(a, zero)[0] for a in abilities])
    boost = zero.copy()
    if strength is not None:
        boost[strength[0]] = strength[1]
    hidden, accuracy = column(ability, boost)
    n = len(codes)
    models = tuple(ModelInfo(f"r{j}", 0.1, 0.2) for j in range(8))
    outcomes = Outcomes(prompt_ids=tuple(f"p{i}" for i in range(n)),
                        prompts=tuple(f"q{i}" for i in range(n)),
                        tasks=tuple(f"t{c}" for c in codes), models=models, quality=quality,
                        cost=np.full((n, 8), 1e-4))
    return outcomes, hidden, accuracy


def task_accuracy(outcomes: Outcomes, column: np.ndarray) -> np.ndarray:
    codes = np.array([int(t[1:]) for t in outcomes.tasks])
    return np.bincount(codes, column) / np.bincount(codes)


def test_lowrank_places_a_new_model_on_the_factors_from_few_answers() -> None:
    # Two answers a task cannot pin ten task accuracies one by one; on a factor they share, the
    # twenty answers together place the model.
    errors: dict[str, list[float]] = {"lowrank": [], "task_mean": []}
    for seed in range(4):
        outcomes, hidden, _ = make_factor_world(ability=1.2, seed=seed)
        truth = task_accuracy(outcomes, hidden)
        rows = choose_prompts(outcomes, 20, "stratified", random_state=seed)
        for method in errors:
            column = impute_quality(outcomes, rows, hidden[rows], method, random_state=seed)
            errors[method].append(float(np.sqrt(np.mean(
                (task_accuracy(outcomes, column) - truth) ** 2))))
    assert np.mean(errors["lowrank"]) < 0.7 * np.mean(errors["task_mean"]), errors


def test_lowrank_keeps_a_strength_the_factors_do_not_explain() -> None:
    # The new model is far better on task 0 than its ability predicts; with enough answers
    # there, the residual term of the prior lets its accuracy follow them.
    outcomes, hidden, accuracy = make_factor_world(ability=0.0, strength=(0, 3.0), seed=1)
    codes = np.array([int(t[1:]) for t in outcomes.tasks])
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(np.flatnonzero(codes == k), 40 if k == 0 else 6,
                                      replace=False) for k in range(10)])
    column = impute_quality(outcomes, rows, hidden[rows], "lowrank", random_state=0)
    plain = 1 / (1 + np.exp(-np.log(accuracy[0] / (1 - accuracy[0])) + 3.0))
    got = task_accuracy(outcomes, column)[0]
    assert abs(got - accuracy[0]) < abs(got - plain), (got, accuracy[0], plain)
    assert abs(got - accuracy[0]) < 0.12


def test_factor_prior_residual_shrinks_when_the_rank_fits() -> None:
    from polyroute.onboarding.calibrate import _factor_covariances

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, (12, 1)) + rng.normal(0, 1, (12, 1)) @ rng.normal(0, 1, (1, 8))
    (cov1, residual1), (_, residual2) = _factor_covariances(logits, (1, 2))
    noisy = logits + rng.normal(0, 0.5, logits.shape)
    (_, residual_noisy), = _factor_covariances(noisy, (1,))
    assert residual1 < 1e-2  # exactly rank one: a held-out model is rebuilt from the others
    assert residual_noisy > 10 * residual1
    assert np.allclose(cov1, cov1.T) and np.all(np.linalg.eigvalsh(cov1) > -1e-9)
    assert residual2 <= residual1 + 1e-2


def test_balanced_choice_matches_each_tasks_difficulty_more_closely() -> None:
    # Same share per task as "stratified", but within a task the prompts are spread along the
    # reference models' mean score, so the answered prompts are as hard as the task on average.
    outcomes, _ = make_world()
    codes = np.array([TASKS.index(t) for t in outcomes.tasks])
    difficulty = outcomes.quality.mean(axis=1)
    task_mean = np.bincount(codes, difficulty) / np.bincount(codes)
    miss: dict[str, list[float]] = {"stratified": [], "balanced": []}
    for seed in range(30):
        for strategy in miss:
            rows = choose_prompts(outcomes, 24, strategy, random_state=seed)
            assert len(set(rows.tolist())) == 24
            counts = np.bincount(codes[rows], minlength=4)
            assert counts.tolist() == [6, 6, 6, 6]
            sample = np.bincount(codes[rows], difficulty[rows], 4) / counts
            miss[strategy].append(float(np.mean((sample - task_mean) ** 2)))
    assert np.mean(miss["balanced"]) < 0.3 * np.mean(miss["stratified"])


@pytest.mark.parametrize("n_reference", [1, 2])
def test_lowrank_works_with_one_or_two_reference_models(n_reference: int) -> None:
    outcomes, hidden = make_world()
    reference = [f"m{j}" for j in range(n_reference)]
    rows = choose_prompts(outcomes, 40, "stratified", random_state=0)
    column = impute_quality(outcomes, rows, hidden[rows], "lowrank", reference=reference)
    assert column.shape == (outcomes.n_prompts,)
    assert np.all((column >= 0) & (column <= 1))
    assert np.array_equal(column[rows], hidden[rows])


def make_irt_world(n_tasks: int = 8, n_per_task: int = 200,
                   seed: int = 0) -> tuple[Outcomes, np.ndarray, np.ndarray]:
    """Eight reference models and a new one drawn from one item-response population: model
    ``m`` answers prompt ``p`` of task ``t`` right with log-odds ``θ_mt − β_m·z_p``, ``θ`` a
    task mean plus ability × loading plus a small task-specific part, ``z_p`` the prompt's
    hidden difficulty (shared by every model: the hard prompts are hard for all). Returns the
    outcomes, the new model's hidden 0/1 column and its true probability on every prompt."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, n_tasks)
    loading = rng.uniform(0.5, 1.5, n_tasks)
    codes = np.repeat(np.arange(n_tasks), n_per_task)
    z = rng.normal(0.0, 1.5, len(codes))

    def model(ability: float) -> np.ndarray:
        theta = base + ability * loading + rng.normal(0.0, 0.3, n_tasks)
        beta = rng.uniform(1.2, 1.8)
        return 1 / (1 + np.exp(-(theta[codes] - beta * z)))

    probs = np.column_stack([model(a) for a in np.linspace(-2.0, 2.0, 8)])
    quality = (rng.random(probs.shape) < probs).astype(float)
    truth = model(0.7)
    hidden = (rng.random(len(codes)) < truth).astype(float)
    n = len(codes)
    outcomes = Outcomes(prompt_ids=tuple(f"p{i}" for i in range(n)),
                        prompts=tuple(f"q{i}" for i in range(n)),
                        tasks=tuple(f"t{c}" for c in codes),
                        models=tuple(ModelInfo(f"r{j}", 0.1, 0.2) for j in range(8)),
                        quality=quality, cost=np.full((n, 8), 1e-4))
    return outcomes, hidden, truth


def test_irt_imputation_uses_each_prompts_difficulty() -> None:
    """From 100 answers, ``irt`` predicts the new model's unasked answers better than its
    *true* per-task accuracy does (which knows nothing of which prompts are hard) and better
    than ``lowrank``: the reference models calibrate every prompt's difficulty, the answers
    only have to place the new model."""
    outcomes, hidden, truth = make_irt_world()
    rows = choose_prompts(outcomes, 100, "random", random_state=1)
    rest = np.setdiff1d(np.arange(outcomes.n_prompts), rows)
    codes = np.array([int(t[1:]) for t in outcomes.tasks])
    per_task = (np.bincount(codes, truth) / np.bincount(codes))[codes]

    def brier(column: np.ndarray) -> float:
        return float(np.mean((column[rest] - hidden[rest]) ** 2))

    irt = impute_quality(outcomes, rows, hidden[rows], "irt")
    lowrank = impute_quality(outcomes, rows, hidden[rows], "lowrank")
    assert brier(irt) < brier(per_task) - 0.01
    assert brier(irt) < brier(lowrank)
    assert np.corrcoef(irt[rest], truth[rest])[0, 1] > 0.85


def test_irt_prior_is_the_reference_population() -> None:
    """With no answer the new model is a typical reference model: the prior's task log-odds are
    the reference models' mean, and it follows the prompts' difficulty (β > 0)."""
    from polyroute.onboarding.calibrate import IRTPrior, _reference_quality, _task_codes

    outcomes, _, _ = make_irt_world()
    ref = _reference_quality(outcomes, None)
    codes, n_tasks = _task_codes(outcomes)
    prior = IRTPrior.from_reference(ref, codes, n_tasks)
    column = prior.predict(prior.mean)
    np.testing.assert_allclose(np.bincount(codes, column) / np.bincount(codes),
                               np.bincount(codes, ref.mean(axis=1)) / np.bincount(codes),
                               atol=0.08)
    assert prior.mean[-1] > 1.0
    hard = prior.design[:, -1] < np.quantile(prior.design[:, -1], 0.2)
    assert column[hard].mean() < column[~hard].mean() - 0.3


def test_sequential_rounds_skip_prompts_whose_answer_is_already_known() -> None:
    """Prompts every reference model fails tell little about a new model: the sequential
    design asks far fewer of them than a random draw would, in rounds of ten, never twice,
    and a failed call is neither re-asked nor recorded."""
    outcomes, hidden, _ = make_irt_world()
    ref_mean = outcomes.quality.mean(axis=1)
    settled = (ref_mean == 0) | (ref_mean == 1)
    asked: list[np.ndarray] = []

    def ask(rows: np.ndarray) -> np.ndarray:
        asked.append(rows)
        values = hidden[rows].copy()
        if len(asked) == 2:
            values[0] = np.nan
        return values

    result = onboard(outcomes, NEW, ask, n=100, strategy="sequential", method="irt",
                     random_state=0)
    every = np.concatenate(asked)
    assert [len(a) for a in asked] == [10] * 10
    assert len(set(every.tolist())) == 100 and len(result.asked["newbie"]) == 100
    assert settled.mean() > 0.15 and settled[every].mean() < 0.5 * settled.mean(), (
        settled.mean(), settled[every].mean())
    j = result.outcomes.model_names.index("newbie")
    assert result.imputed[asked[1][0], j] and not result.imputed[asked[1][1:], j].any()

"""Onboard a new model from a few graded answers, so that any router can be trained with it.

The recorded outcomes of the models we already have (the *reference* models, e.g. the bundled
ones) calibrate the prompts: which tasks are hard, which prompts the strong models miss, which
models tend to fail together. A new model then needs only enough answers to place itself among
them. Two steps:

1. :func:`choose_prompts` picks the ``n`` prompts to ask: spread over tasks in proportion to
   their size (``"stratified"``), the same and within each task evenly spread from the easiest
   to the hardest prompt by the reference models' mean score (``"balanced"``), or, with
   ``"informative"``, a greedy A-optimal design for the imputation's regression (each next
   prompt the one that most lowers the summed variance of the predicted qualities over all
   prompts), which spreads the answers over tasks *and* over the patterns of the reference
   models' scores.
2. :func:`add_answers` joins the graded answers (by prompt id) and fills the new model's other
   cells with its *expected* quality given what the reference models scored on each prompt and
   the prompt's task (:data:`IMPUTATION_METHODS`; the default ``irt`` learns each prompt's
   difficulty from the reference models and fits only the new model's ability from its
   answers). The result is an ordinary :class:`Outcomes`
   table with the new column, plus a mask of the imputed cells (:class:`Onboarded`).

:func:`onboard` does both with a callable that asks the new model. Routers that estimate each
model's quality per prompt from the table (knn, cluster, linear, mlp, mf, ensemble, best-single)
can be trained on ``Onboarded.outcomes``; anything that must learn from *real* outcomes only
(online learners replaying feedback, the evaluation oracle) takes ``Onboarded.observed()``,
where imputed cells are NaN again. See docs/onboarding.md for the measured recovery.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polyroute.data.outcomes import ModelInfo, Outcomes, rule_costs
from polyroute.errors import DataError
from polyroute.routers.irt import map_ability

#: How to choose the prompts to ask: uniformly, stratified by task, stratified by task and
#: balanced on difficulty within each task, or by an A-optimal design over the imputation's
#: features (reference models' scores and task).
SELECTION_STRATEGIES = ("random", "stratified", "balanced", "informative")
#: How to fill the new model's unasked cells (see :func:`impute_quality`).
#: :func:`onboard` only: half the prompts by the balanced design, the rest where the first
#: answers leave a routing decision open.
ADAPTIVE = "adaptive"
#: :func:`onboard` only: rounds of prompts chosen by the IRT model's posterior (see
#: :func:`_sequential_rounds`).
SEQUENTIAL = "sequential"
IMPUTATION_METHODS = ("task_mean", "ridge", "logistic", "profile", "lowrank", "irt")

_C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
_KAPPA_GRID = (1.0, 3.0, 10.0, 30.0)
_ALPHA_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True, eq=False)
class Onboarded:
    """Outcomes that include onboarded model(s), and which of their cells are imputed.

    ``imputed`` is a boolean ``(n_prompts, n_models)`` mask aligned with ``outcomes`` (True where
    a quality was filled in rather than recorded); ``asked`` maps each onboarded model to the
    prompt ids it was asked (failed answers included: they were paid for).
    """

    outcomes: Outcomes
    imputed: np.ndarray
    asked: Mapping[str, tuple[str, ...]]

    def observed(self) -> Outcomes:
        """The same table with every imputed cell unknown (NaN) again."""
        return _with_quality(self.outcomes, np.where(self.imputed, np.nan,
                                                     self.outcomes.quality))

    def asking_cost(self, model: str) -> float:
        """Dollars spent asking ``model`` its calibration prompts (the table's cost rule)."""
        if model not in self.asked:
            raise DataError(f"model {model!r} was not onboarded here")
        j = self.outcomes.model_names.index(model)
        index = {p: i for i, p in enumerate(self.outcomes.prompt_ids)}
        return float(sum(self.outcomes.cost[index[p], j] for p in self.asked[model]))


# -- choosing the prompts --------------------------------------------------------------------
def choose_prompts(outcomes: Outcomes, n: int, strategy: str = "random",
                   reference: Sequence[str] | None = None,
                   random_state: int | None = 0) -> np.ndarray:
    """Row indices of the ``n`` prompts of ``outcomes`` to ask a new model, without repeats.

    ``reference`` names the models whose outcomes calibrate the prompts (default: all).
    """
    if strategy not in SELECTION_STRATEGIES:
        raise DataError(f"unknown selection strategy {strategy!r}; choose from: "
                        f"{', '.join(SELECTION_STRATEGIES)}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"the number of calibration prompts must be at least 1, got {n!r}")
    rng = np.random.default_rng(random_state)
    total = outcomes.n_prompts
    if n >= total:
        return np.arange(total)
    if strategy == "random":
        return np.sort(rng.choice(total, size=n, replace=False))
    ref_q = _reference_quality(outcomes, reference)
    tasks = np.asarray(outcomes.tasks)
    names = outcomes.task_names
    groups = [np.flatnonzero(tasks == t) for t in names]
    sizes = np.array([len(g) for g in groups], dtype=float)
    if strategy == "informative":
        return _a_optimal(_design(ref_q, *_task_codes(outcomes)), n, rng)
    alloc = _allocate(n, sizes, sizes.astype(int))
    if strategy == "balanced":
        difficulty = ref_q.mean(axis=1)
        chosen = [_systematic(g, difficulty[g], k, rng)
                  for g, k in zip(groups, alloc, strict=True) if k]
    else:
        chosen = [rng.choice(g, size=k, replace=False)
                  for g, k in zip(groups, alloc, strict=True) if k]
    return np.sort(np.concatenate(chosen))


def _systematic(group: np.ndarray, score: np.ndarray, k: int,
                rng: np.random.Generator) -> np.ndarray:
    """``k`` of ``group``'s rows, evenly spaced along the order of ``score`` (ties in random
    order) from a random start: a sample balanced on the reference models' mean score, so a
    task's few answers are not by chance mostly easy or mostly hard prompts. That is where
    most of the spread of a task accuracy estimated from ~7 answers comes from."""
    perm = rng.permutation(len(group))
    order = group[perm][np.argsort(score[perm], kind="stable")]
    step = len(order) / k
    return order[(rng.uniform(0, step) + step * np.arange(k)).astype(int)]


def _a_optimal(design: np.ndarray, n: int, rng: np.random.Generator,
               prior: float = 1.0) -> np.ndarray:
    """Greedy A-optimal design for the imputation's regression: each next prompt is the one that
    most lowers the summed variance of the predictions over every prompt (a ridge posterior with
    precision ``prior``), so the answers spread over tasks and over the patterns of reference
    scores. Ties (identical profiles are common with 0/1 outcomes) are broken at random."""
    perm = rng.permutation(design.shape[0])
    x = design[perm]
    second = x.T @ x / len(x)
    inv = np.eye(x.shape[1]) / prior
    open_ = np.ones(len(x), dtype=bool)
    picked = []
    for _ in range(n):
        v = x @ inv  # (n, d): A^-1 x_c for every candidate
        gain = np.einsum("nd,de,ne->n", v, second, v) / (1.0 + np.einsum("nd,nd->n", v, x))
        gain[~open_] = -np.inf
        c = int(np.argmax(gain))  # first maximum in the random order: a random tie-break
        picked.append(c)
        open_[c] = False
        u = inv @ x[c]
        inv -= np.outer(u, u) / (1.0 + x[c] @ u)
    return np.sort(perm[picked])


def _allocate(n: int, weights: np.ndarray, caps: np.ndarray,
              one_each: bool = True) -> np.ndarray:
    """Split ``n`` draws over groups in proportion to ``weights`` (largest remainders), at least
    one per group when ``n`` allows (and ``one_each``), never more than a group holds."""
    alloc = np.zeros(len(weights), dtype=int)
    if one_each and n >= len(weights):
        alloc[:] = np.minimum(1, caps)
    left = n - int(alloc.sum())
    while left > 0:
        room = caps - alloc
        share = np.where(room > 0, weights, 0.0)
        if share.sum() <= 0:
            share = (room > 0).astype(float)
        ideal = left * share / share.sum()
        add = np.minimum(np.floor(ideal).astype(int), room)
        if add.sum() == 0:  # the remainder goes one at a time to the largest share left
            add[int(np.argmax(np.where(room > 0, ideal, -1.0)))] = 1
        alloc += add
        left -= int(add.sum())
    return alloc


# -- imputing the unasked cells --------------------------------------------------------------
def impute_quality(outcomes: Outcomes, rows: np.ndarray, answers: np.ndarray,
                   method: str = "irt", reference: Sequence[str] | None = None,
                   random_state: int | None = 0) -> np.ndarray:
    """The new model's expected quality on every prompt of ``outcomes``.

    ``answers[i]`` is its graded quality on prompt ``rows[i]`` (NaN = the call failed; such
    prompts are imputed like unasked ones). Methods, all fitted on the answered prompts only:

    * ``task_mean``: the model's accuracy per task, shrunk towards the reference models' mean on
      that task plus the model's overall offset from them (weight chosen by cross-validation).
    * ``ridge``: a ridge regression of the answers on the reference models' scores on the same
      prompt and the task (which models the new one resembles, and where it differs by task).
    * ``logistic``: the same design as a regularised logistic regression (probabilities stay in
      [0, 1]; fractional qualities are fitted as weighted 0/1 labels).
    * ``profile``: a hierarchical logistic model. The new model's per-task log-odds get the
      reference models' per-task profiles as prior (their mean and task-by-task covariance, so
      an answer on gsm8k also informs math when the reference models are good or bad at both);
      within a task, its per-prompt deviation follows the reference models' deviations on that
      prompt (which prompts are hard, which models it fails with). Prior scales by CV.
    * ``lowrank``: the same model with a factor prior on the per-task log-odds: the reference
      models' per-task profiles are a general ability plus a few task-family factors, so the
      new model's N answers fit its few loadings (rank 1–3, by CV) instead of 14 separate
      accuracies, plus a per-task residual as large as real models stray from the factors
      (measured by rebuilding each reference model from the others). A model's routing value
      sits in its task accuracies.
    * ``irt`` (the default): an item-response model, :class:`IRTPrior`. Log-odds of a right
      answer = the model's ability on the task + its discrimination × the prompt's difficulty
      signal (how the reference models did on that prompt against their own task accuracy).
      The prior over those 15 numbers is the population of the reference models, each fitted
      on all of its outcomes (empirical Bayes), so nothing is tuned on the N answers; the
      answers only place the new model, and its unasked cells get P(correct).

    Returns an ``(n_prompts,)`` array in [0, 1] whose answered cells hold the answers.
    """
    if method not in IMPUTATION_METHODS:
        raise DataError(f"unknown imputation method {method!r}; choose from: "
                        f"{', '.join(IMPUTATION_METHODS)}")
    rows = np.asarray(rows, dtype=int)
    y = np.asarray(answers, dtype=float)
    if rows.shape != y.shape or rows.ndim != 1:
        raise DataError("rows and answers must be 1-d and of the same length")
    if len(set(rows.tolist())) != len(rows):
        raise DataError("a prompt was answered twice")
    known = ~np.isnan(y)
    if np.any((y[known] < 0) | (y[known] > 1)):
        raise DataError("answer qualities must lie in [0, 1] (NaN for a failed call)")
    rows, y = rows[known], y[known]
    if len(rows) == 0:
        raise DataError("no answered calibration prompt: every call failed")
    ref_q = _reference_quality(outcomes, reference)
    codes, n_tasks = _task_codes(outcomes)
    rng = np.random.default_rng(random_state)
    if method == "task_mean":
        pred = _task_mean(ref_q, codes, n_tasks, rows, y, rng)
    elif method == "profile":
        pred = _profile(ref_q, codes, n_tasks, rows, y, rng)
    elif method == "lowrank":
        pred = _lowrank(ref_q, codes, n_tasks, rows, y, rng)
    elif method == "irt":
        pred = _irt(ref_q, codes, n_tasks, rows, y)
    else:
        design = _design(ref_q, codes, n_tasks)
        fitter = _fit_logistic if method == "logistic" else _fit_ridge
        pred = fitter(design, rows, y, rng)
    pred = np.clip(pred, 0.0, 1.0)
    pred[rows] = y
    return pred


def add_answers(outcomes: Outcomes, info: ModelInfo, answers: Mapping[str, float],
                method: str = "irt", reference: Sequence[str] | None = None,
                random_state: int | None = 0, imputed: np.ndarray | None = None) -> Onboarded:
    """``outcomes`` plus a column for the new model ``info``: its answers (a mapping from prompt
    id to graded quality, NaN = failed) where asked, its imputed expected quality elsewhere.

    The new column's cost follows the data's rule at the model's list prices. ``reference``
    defaults to every model of ``outcomes`` with recorded (not ``imputed``) outcomes.
    """
    if info.name in outcomes.model_names:
        raise DataError(f"model {info.name!r} is already in the outcomes")
    index = {p: i for i, p in enumerate(outcomes.prompt_ids)}
    unknown = [p for p in answers if p not in index]
    if unknown:
        raise DataError(f"answers for prompt id(s) not in the outcomes: {', '.join(unknown[:5])}")
    prompt_ids = list(answers)
    rows = np.array([index[p] for p in prompt_ids], dtype=int)
    values = np.array([answers[p] for p in prompt_ids], dtype=float)
    old_mask = (np.zeros(outcomes.quality.shape, dtype=bool) if imputed is None
                else np.asarray(imputed, dtype=bool))
    if old_mask.shape != outcomes.quality.shape:
        raise DataError("the imputed mask must have the outcomes' shape")
    if reference is None:
        reference = [m for j, m in enumerate(outcomes.model_names) if not old_mask[:, j].any()]
    column = impute_quality(outcomes, rows, values, method, reference, random_state)
    mask = np.ones(outcomes.n_prompts, dtype=bool)
    mask[rows[~np.isnan(values)]] = False
    cost = rule_costs(outcomes.prompts, [info])
    table = Outcomes(
        prompt_ids=outcomes.prompt_ids, prompts=outcomes.prompts, tasks=outcomes.tasks,
        models=(*outcomes.models, info),
        quality=np.column_stack([outcomes.quality, column]),
        cost=np.column_stack([outcomes.cost, cost]),
        latency=None if outcomes.latency is None
        else np.column_stack([outcomes.latency, np.full(outcomes.n_prompts, np.nan)]),
        source=outcomes.source)
    return Onboarded(outcomes=table, imputed=np.column_stack([old_mask, mask]),
                     asked={info.name: tuple(prompt_ids)})


def onboard(outcomes: Outcomes, info: ModelInfo, ask: Callable[[np.ndarray], Sequence[float]],
            n: int = 100, strategy: str = "random", method: str = "irt",
            reference: Sequence[str] | None = None, random_state: int | None = 0,
            first_share: float = 0.5) -> Onboarded:
    """Choose ``n`` calibration prompts, ``ask`` the new model (row indices of ``outcomes`` in,
    graded qualities out, NaN = failed) and return the table that includes it.

    The defaults (``random``, ``irt``): when each bundled model in turn was onboarded from 100
    answers against the others on the training parts of benchmarks/onboard_recovery.py,
    ``irt`` predicted the unasked cells best of the one-shot designs (Brier 0.124 against
    0.129 for ``lowrank``) and its task accuracies too (RMSE 0.091 against 0.094), and it ties
    ``lowrank`` on the inner-split routing recovery (96 % each); on the held-out prompts it
    brought back 54–61 % of the AIQ gap at N = 100 against 38–58 % for ``lowrank``.
    ``sequential`` has the lowest training Brier (0.120) but recovered less routing value.

    ``strategy`` is one of :data:`SELECTION_STRATEGIES` (all prompts chosen up front) or
    ``"adaptive"``: ``first_share`` of the prompts by the ``balanced`` design, then the rest
    in the tasks where what the first answers leave uncertain could change a routing decision
    (see :func:`routing_value_of_tasks`), so no answer is spent confirming a task the model
    clearly wins or clearly loses. ``"sequential"``: rounds of ten prompts chosen by the
    :class:`IRTPrior` posterior (:func:`_sequential_rounds`); ``ask`` is called once a round.
    """
    if strategy == SEQUENTIAL:
        answers = _sequential_rounds(outcomes, ask, n, reference,
                                     np.random.default_rng(random_state))
        return add_answers(outcomes, info, answers, method, reference, random_state)
    if strategy != ADAPTIVE:
        rows = choose_prompts(outcomes, n, strategy, reference, random_state)
        return add_answers(outcomes, info, _ask(ask, outcomes, rows), method, reference,
                           random_state)
    if not 0 < first_share <= 1:
        raise DataError(f"first_share must lie in (0, 1], got {first_share!r}")
    first = max(1, min(n, int(round(n * first_share))))
    rows = choose_prompts(outcomes, first, "balanced", reference, random_state)
    answers = _ask(ask, outcomes, rows)
    if n > first:
        done = np.array([not math.isnan(v) for v in answers.values()])
        column = impute_quality(outcomes, rows, np.array(list(answers.values())), method,
                                reference, random_state) if done.any() else None
        more = _second_round(outcomes, info, rows, column, n - first, reference,
                             np.random.default_rng(random_state))
        answers.update(_ask(ask, outcomes, more))
    return add_answers(outcomes, info, answers, method, reference, random_state)


def routing_value_of_tasks(outcomes: Outcomes, info: ModelInfo, column: np.ndarray,
                           answered: np.ndarray,
                           reference: Sequence[str] | None = None) -> dict[str, float]:
    """Per task, how much routing could gain from knowing the new model's accuracy exactly.

    The new model's accuracy on task ``t`` is uncertain: estimate ``p̂`` (the mean of its
    imputed ``column`` over the task) with the binomial spread of ``answered[t]`` answers. For
    each trade-off weight λ of the evaluation's sweep, the router prefers it over the best
    reference model iff ``p − λ·cost`` beats theirs; the expected value of perfect information
    of that two-way choice, ``s·φ(d/s) − |d|·Φ(−|d|/s)`` with ``d`` the margin, summed over λ and
    weighted by the task's size, says where another answer is worth its price.
    """
    from scipy.stats import norm

    ref_q = _reference_quality(outcomes, reference)
    names = list(outcomes.model_names if reference is None else reference)
    ref_cost = np.asarray(outcomes.select_models(names).cost, dtype=float)
    new_cost = rule_costs(outcomes.prompts, [info])[:, 0]
    scale = float(max(np.nanmean(ref_cost, axis=0).max(), new_cost.mean())) or 1.0
    tasks = np.asarray(outcomes.tasks)
    lambdas = np.array([0.0, *np.geomspace(1e-3, 1e3, 61)])
    value: dict[str, float] = {}
    for t in outcomes.task_names:
        rows = tasks == t
        acc = ref_q[rows].mean(axis=0)
        cost = np.nanmean(ref_cost[rows], axis=0) / scale
        mine = float(new_cost[rows].mean() / scale)
        p = float(np.clip(column[rows].mean(), 0.02, 0.98))
        spread = math.sqrt(p * (1 - p) / (answered.get(t, 0) + 2.0))
        best = np.max(acc[None, :] - lambdas[:, None] * cost[None, :], axis=1)
        margin = p - (best + lambdas * mine)
        z = np.abs(margin) / spread
        evpi = spread * norm.pdf(z) - np.abs(margin) * norm.cdf(-z)
        value[t] = float(rows.sum() * evpi.sum())
    return value


def _second_round(outcomes: Outcomes, info: ModelInfo, asked: np.ndarray,
                  column: np.ndarray | None, n: int, reference: Sequence[str] | None,
                  rng: np.random.Generator) -> np.ndarray:
    """``n`` more prompts, allocated over tasks by :func:`routing_value_of_tasks`."""
    tasks = np.asarray(outcomes.tasks)
    open_ = np.ones(outcomes.n_prompts, dtype=bool)
    open_[asked] = False
    names = outcomes.task_names
    if column is None:  # every first answer failed: nothing to focus on, stratify
        weights = np.array([np.sum(tasks == t) for t in names], dtype=float)
    else:
        answered = {t: int(np.sum(tasks[asked] == t)) for t in names}
        value = routing_value_of_tasks(outcomes, info, column, answered, reference)
        weights = np.array([value[t] for t in names]) + 1e-12
    groups = [np.flatnonzero(open_ & (tasks == t)) for t in names]
    caps = np.array([len(g) for g in groups])
    alloc = _allocate(min(n, int(caps.sum())), np.where(caps > 0, weights, 0.0), caps,
                      one_each=False)
    chosen = [rng.choice(g, size=k, replace=False) for g, k in zip(groups, alloc, strict=True) if k]
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=int)


def _ask(ask: Callable[[np.ndarray], Sequence[float]], outcomes: Outcomes,
         rows: np.ndarray) -> dict[str, float]:
    if len(rows) == 0:
        return {}
    values = np.asarray(ask(rows), dtype=float).reshape(-1)
    if values.shape != rows.shape:
        raise DataError(f"ask() returned {values.size} qualities for {len(rows)} prompts")
    return {outcomes.prompt_ids[i]: float(v) for i, v in zip(rows, values, strict=True)}


# -- internals -------------------------------------------------------------------------------
def _with_quality(outcomes: Outcomes, quality: np.ndarray) -> Outcomes:
    return Outcomes(prompt_ids=outcomes.prompt_ids, prompts=outcomes.prompts,
                    tasks=outcomes.tasks, models=outcomes.models, quality=quality,
                    cost=outcomes.cost, latency=outcomes.latency, source=outcomes.source)


def _reference_quality(outcomes: Outcomes, reference: Sequence[str] | None) -> np.ndarray:
    """The reference models' quality, unknown cells filled with the model's task mean (then its
    overall mean), so every prompt has a complete calibration profile."""
    names = list(outcomes.model_names if reference is None else reference)
    if not names:
        raise DataError("onboarding needs at least one reference model with recorded outcomes")
    q = np.array(outcomes.select_models(names).quality, dtype=float)
    if not np.isnan(q).any():
        return q
    codes, n_tasks = _task_codes(outcomes)
    with np.errstate(invalid="ignore"):
        overall = np.nanmean(q, axis=0)
    if np.isnan(overall).any():
        missing = [n for n, v in zip(names, overall, strict=True) if np.isnan(v)]
        raise DataError(f"reference model(s) without any recorded outcome: {', '.join(missing)}")
    for t in range(n_tasks):
        block = q[codes == t]
        with np.errstate(invalid="ignore"):
            means = np.nanmean(block, axis=0) if np.any(~np.isnan(block)) else overall
        means = np.where(np.isnan(means), overall, means)
        q[codes == t] = np.where(np.isnan(block), means[None, :], block)
    return q


def _task_codes(outcomes: Outcomes) -> tuple[np.ndarray, int]:
    names = {t: k for k, t in enumerate(sorted(outcomes.task_names))}
    return np.array([names[t] for t in outcomes.tasks], dtype=int), len(names)


def _design(ref_q: np.ndarray, codes: np.ndarray, n_tasks: int) -> np.ndarray:
    """Per prompt: the reference models' scores (centred) and the task, one-hot."""
    onehot = np.zeros((len(codes), n_tasks))
    onehot[np.arange(len(codes)), codes] = 1.0
    return np.column_stack([ref_q - ref_q.mean(axis=0), onehot])


def _folds(n: int, rng: np.random.Generator, k: int = 5) -> list[np.ndarray]:
    return np.array_split(rng.permutation(n), min(k, n)) if n >= 2 else []


def _cv_choice(grid: Sequence[float], n: int, rng: np.random.Generator,
               loss: Callable[[float, np.ndarray, np.ndarray], float]) -> float:
    """The grid value with the lowest summed held-out loss over k folds of the answers."""
    folds = _folds(n, rng)
    if len(folds) < 2:
        return float(grid[len(grid) // 2])
    scores = []
    for value in grid:
        total = 0.0
        for fold in folds:
            train = np.setdiff1d(np.arange(n), fold)
            total += loss(value, train, fold)
        scores.append(total)
    return float(grid[int(np.argmin(scores))])


def _task_mean(ref_q: np.ndarray, codes: np.ndarray, n_tasks: int, rows: np.ndarray,
               y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ref_mean = ref_q.mean(axis=1)  # per prompt, mean over reference models
    sizes = np.maximum(np.bincount(codes, minlength=n_tasks), 1)
    task_prior = np.bincount(codes, ref_mean, n_tasks) / sizes

    def fit(kappa: float, sel: np.ndarray) -> np.ndarray:
        r, v = rows[sel], y[sel]
        offset = float(np.mean(v - ref_mean[r]))
        prior = np.clip(task_prior + offset, 0.0, 1.0)
        total = np.bincount(codes[r], v, n_tasks)
        count = np.bincount(codes[r], minlength=n_tasks)
        return (total + kappa * prior) / (count + kappa)

    def loss(kappa: float, train: np.ndarray, fold: np.ndarray) -> float:
        return float(np.sum((fit(kappa, train)[codes[rows[fold]]] - y[fold]) ** 2))

    kappa = _cv_choice(_KAPPA_GRID, len(rows), rng, loss)
    return fit(kappa, np.arange(len(rows)))[codes]


def _fit_ridge(design: np.ndarray, rows: np.ndarray, y: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    from sklearn.linear_model import Ridge

    x = design[rows]

    def loss(alpha: float, train: np.ndarray, fold: np.ndarray) -> float:
        model = Ridge(alpha=alpha).fit(x[train], y[train])
        return float(np.sum((np.clip(model.predict(x[fold]), 0, 1) - y[fold]) ** 2))

    alpha = _cv_choice(_ALPHA_GRID, len(rows), rng, loss)
    return Ridge(alpha=alpha).fit(x, y).predict(design)


def _fit_logistic(design: np.ndarray, rows: np.ndarray, y: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    x = design[rows]
    if np.all(y == y[0]) and y[0] in (0.0, 1.0):  # one class only: nothing to separate
        return np.full(design.shape[0], float(y[0]))

    def loss(c: float, train: np.ndarray, fold: np.ndarray) -> float:
        p = np.clip(_logistic(x[train], y[train], c).predict(x[fold]), 1e-4, 1 - 1e-4)
        return float(-np.sum(y[fold] * np.log(p) + (1 - y[fold]) * np.log(1 - p)))

    c = _cv_choice(_C_GRID, len(rows), rng, loss)
    return _logistic(x, y, c).predict(design)


@dataclass(frozen=True)
class _LogisticFit:
    model: Any
    constant: float | None

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.constant is not None:
            return np.full(x.shape[0], self.constant)
        return self.model.predict_proba(x)[:, 1]


def _logistic(x: np.ndarray, y: np.ndarray, c: float) -> _LogisticFit:
    """L2 logistic regression on qualities in [0, 1]: each answer is a 1-label of weight ``y``
    and a 0-label of weight ``1 − y`` (the same likelihood as a fractional label)."""
    from sklearn.linear_model import LogisticRegression

    weight = np.concatenate([y, 1 - y])
    keep = weight > 0
    labels = np.concatenate([np.ones(len(y)), np.zeros(len(y))])[keep]
    if len(np.unique(labels)) < 2:
        return _LogisticFit(None, float(labels[0]) if len(labels) else float(np.mean(y)))
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(np.concatenate([x, x])[keep], labels, sample_weight=weight[keep])
    return _LogisticFit(model, None)


# -- the hierarchical task-profile model -----------------------------------------------------
_TAU_GRID = (0.25, 0.5, 1.0, 2.0)
_SIGMA_GRID = (0.1, 0.3, 1.0, 3.0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.02, 0.98)
    return np.log(p / (1 - p))


def _task_profiles(ref_q: np.ndarray, codes: np.ndarray,
                   n_tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference models' per-task accuracies ``(tasks, models)`` and their log-odds."""
    sizes = np.maximum(np.bincount(codes, minlength=n_tasks), 1)
    acc = np.stack([np.bincount(codes, ref_q[:, j], n_tasks) / sizes
                    for j in range(ref_q.shape[1])], axis=1)
    return acc, _logit(acc)


def _profile(ref_q: np.ndarray, codes: np.ndarray, n_tasks: int, rows: np.ndarray,
             y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    acc, logits = _task_profiles(ref_q, codes, n_tasks)
    if logits.shape[1] > 1:
        cov = np.cov(logits).reshape(n_tasks, n_tasks)
    else:
        cov = np.eye(n_tasks)
    # shrink the 8-sample covariance towards its diagonal so it is safely invertible
    cov = 0.8 * cov + 0.2 * np.diag(np.diag(cov)) + 0.05 * np.eye(n_tasks)
    return _task_logistic(ref_q, acc, logits.mean(axis=1), [tau * cov for tau in _TAU_GRID],
                          _SIGMA_GRID, codes, rows, y, rng)


#: ``lowrank``: ranks of the task factor model, scales of its loading prior, and prior scales
#: of the per-prompt terms, all chosen by cross-validation on the answers.
_RANK_GRID = (1, 2, 3)
_LOADING_GRID = (0.5, 1.0, 2.0)
_LOWRANK_SIGMA_GRID = (0.1, 0.3, 1.0)


def _lowrank(ref_q: np.ndarray, codes: np.ndarray, n_tasks: int, rows: np.ndarray,
             y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    acc, logits = _task_profiles(ref_q, codes, n_tasks)
    mean = logits.mean(axis=1)
    covs = [tau * factors + residual * np.eye(n_tasks)
            for factors, residual in _factor_covariances(logits, _RANK_GRID)
            for tau in _LOADING_GRID]
    return _task_logistic(ref_q, acc, mean, covs, _LOWRANK_SIGMA_GRID, codes, rows, y, rng)


def _factor_covariances(logits: np.ndarray,
                        ranks: Sequence[int]) -> list[tuple[np.ndarray, float]]:
    """Per rank ``r``, the prior of a new model's per-task log-odds under a rank-``r`` factor
    model of the reference models' ``(tasks, models)`` log-odds: the covariance of the top
    ``r`` principal directions with the loadings' spread, and the residual variance per task
    that a leave-one-model-out reconstruction at that rank leaves (how far a real model strays
    from the factors; it keeps a model's unusual strength from being flattened)."""
    m = logits.shape[1]
    centred = logits - logits.mean(axis=1, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    out = []
    for r in ranks:
        r = min(r, max(m - 1, 0), len(s))
        residual = _loo_residual(logits, r) if m > 2 else 1.0
        basis = u[:, :r]
        out.append(((basis * (s[:r] ** 2 / max(m - 1, 1))) @ basis.T, max(residual, 1e-3)))
    return out


def _loo_residual(logits: np.ndarray, rank: int) -> float:
    """Mean squared error of each reference model's log-odds rebuilt from the rank-``rank``
    factors of the others (its loadings fitted by projection)."""
    m = logits.shape[1]
    errors = []
    for j in range(m):
        rest = np.delete(logits, j, axis=1)
        mean = rest.mean(axis=1)
        u, s, _ = np.linalg.svd(rest - mean[:, None], full_matrices=False)
        # only directions the others span: m − 1 centred columns have rank ≤ m − 2, and a
        # null direction of the SVD is arbitrary (it would make the result depend on the
        # order of the prompts and models)
        real = int(np.sum(s > 1e-9 * max(float(s[0]), 1e-12))) if len(s) else 0
        basis = u[:, :min(rank, real)]
        errors.append(logits[:, j] - mean - basis @ (basis.T @ (logits[:, j] - mean)))
    return float(np.mean(np.square(errors)))


def _task_logistic(ref_q: np.ndarray, acc: np.ndarray, mean: np.ndarray,
                   task_covs: Sequence[np.ndarray], sigmas: Sequence[float], codes: np.ndarray,
                   rows: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MAP logistic model shared by ``profile`` and ``lowrank``: per-task log-odds with a
    Gaussian prior (mean ``mean``, covariance one of ``task_covs``) plus, within a task, the
    reference models' deviations on the prompt (prior scale one of ``sigmas``); the prior pair
    with the lowest 5-fold held-out log-loss on the answers wins."""
    n_tasks = len(mean)
    within = ref_q - acc[codes]  # each reference model's deviation from its task accuracy
    onehot = np.zeros((len(codes), n_tasks))
    onehot[np.arange(len(codes)), codes] = 1.0
    design = np.column_stack([onehot, within])
    m = within.shape[1]
    prior_mean = np.concatenate([mean, np.zeros(m)])
    inverses = [np.linalg.inv(c) for c in task_covs]

    def precision(index: int) -> np.ndarray:
        c, sigma = divmod(index, len(sigmas))
        out = np.zeros((n_tasks + m, n_tasks + m))
        out[:n_tasks, :n_tasks] = inverses[c]
        out[n_tasks:, n_tasks:] = np.eye(m) / sigmas[sigma]
        return out

    x = design[rows]

    def loss(index: float, train: np.ndarray, fold: np.ndarray) -> float:
        theta = _map_logistic(x[train], y[train], prior_mean, precision(int(index)))
        p = np.clip(_sigmoid(x[fold] @ theta), 1e-4, 1 - 1e-4)
        return float(-np.sum(y[fold] * np.log(p) + (1 - y[fold]) * np.log(1 - p)))

    best = int(_cv_choice(list(range(len(task_covs) * len(sigmas))), len(rows), rng, loss))
    theta = _map_logistic(x, y, prior_mean, precision(best))
    return _sigmoid(design @ theta)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _map_logistic(x: np.ndarray, y: np.ndarray, mean: np.ndarray,
                  precision: np.ndarray) -> np.ndarray:
    """MAP of a logistic regression (labels in [0, 1]) under a Gaussian prior: the IRT router's
    solver for a new model's ability, with no per-prompt offset."""
    return map_ability(x, np.zeros(len(x)), y, mean, precision)[0]


# -- the IRT imputation: a population prior learned from the reference models --------------------
#: Newton's method fits each reference model's parameters with this weak prior precision; the
#: fitted task log-odds are then clipped to ±_IRT_LOGIT_CAP (a task a model never solves would
#: otherwise put an unbounded log-odds, and a huge variance, into the population prior).
_IRT_FIT_PRECISION = 0.1
_IRT_LOGIT_CAP = 4.0
#: rank of the task-family factors of the prior over task log-odds (capped by the models)
_IRT_RANK = 3


@dataclass(frozen=True)
class IRTPrior:
    """An item-response model of the reference models, and what it says about a new one.

    A model's log-odds of answering prompt ``p`` (task ``t``) right is ``θ_t + β·d_p``: ``θ_t``
    its ability on the task, ``d_p`` the prompt's difficulty signal (how far the reference
    models' scores on ``p`` lie above their own accuracy on ``t``: negative on the prompts that
    trip up models that usually solve the task), ``β`` how sharply the model follows it.
    ``design`` holds the ``(one-hot task, d_p)`` row of every prompt; ``mean`` and
    ``precision`` are the prior of a new model's ``(θ, β)``, learned from the reference
    models themselves (empirical Bayes): each reference model in turn is fitted on all its
    outcomes with ``d`` computed from the *other* references (as a new model will see all of
    them), and the population of those fits is the prior: its mean, a rank-3 factor
    covariance over tasks (tasks go together: math with gsm8k), and the spread of ``β``.
    No hyper-parameter is chosen from the new model's few answers.
    """

    design: np.ndarray
    mean: np.ndarray
    precision: np.ndarray

    @classmethod
    def from_reference(cls, ref_q: np.ndarray, codes: np.ndarray, n_tasks: int) -> IRTPrior:
        onehot = np.zeros((len(codes), n_tasks))
        onehot[np.arange(len(codes)), codes] = 1.0
        design = np.column_stack([onehot, _difficulty_signal(ref_q, codes, n_tasks)])
        m = ref_q.shape[1]
        if m < 3:  # too few models for a population: a broad prior around their accuracies
            _, logits = _task_profiles(ref_q, codes, n_tasks)
            mean = np.concatenate([logits.mean(axis=1), [1.0]])
            return cls(design, mean, np.eye(n_tasks + 1) / 4.0)
        fits = []
        for j in range(m):
            others = np.delete(ref_q, j, axis=1)
            x = np.column_stack([onehot, _difficulty_signal(others, codes, n_tasks)])
            fits.append(map_ability(x, np.zeros(len(x)), ref_q[:, j], np.zeros(n_tasks + 1),
                                    _IRT_FIT_PRECISION * np.eye(n_tasks + 1))[0])
        fitted = np.array(fits)
        fitted[:, :n_tasks] = np.clip(fitted[:, :n_tasks], -_IRT_LOGIT_CAP, _IRT_LOGIT_CAP)
        cov = np.zeros((n_tasks + 1, n_tasks + 1))
        ((factors, residual),) = _factor_covariances(fitted[:, :n_tasks].T, [_IRT_RANK])
        cov[:n_tasks, :n_tasks] = factors + residual * np.eye(n_tasks)
        cov[n_tasks, n_tasks] = float(fitted[:, n_tasks].var()) + 0.25
        return cls(design, fitted.mean(axis=0), np.linalg.inv(cov))

    def posterior(self, rows: np.ndarray, y: np.ndarray,
                  start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """MAP ``(θ, β)`` of a model that scored ``y`` on ``rows`` (NaN = unknown) and the
        Laplace posterior precision."""
        x = self.design[rows]
        return map_ability(x, np.zeros(len(x)), y, self.mean, self.precision, start=start)

    def predict(self, theta: np.ndarray) -> np.ndarray:
        return _sigmoid(self.design @ theta)


def _difficulty_signal(ref_q: np.ndarray, codes: np.ndarray, n_tasks: int) -> np.ndarray:
    """Per prompt, the reference models' mean score on it minus their mean accuracy on its
    task: the within-task difficulty a model's answers follow (one number, so a new model
    fits one weight for it from its answers across all tasks)."""
    acc, _ = _task_profiles(ref_q, codes, n_tasks)
    return (ref_q - acc[codes]).mean(axis=1)


def _irt(ref_q: np.ndarray, codes: np.ndarray, n_tasks: int, rows: np.ndarray,
         y: np.ndarray) -> np.ndarray:
    prior = IRTPrior.from_reference(ref_q, codes, n_tasks)
    return prior.predict(prior.posterior(rows, y)[0])


#: ``sequential``: prompts asked per round; after each round the posterior is refitted.
SEQUENTIAL_BATCH = 10


def _sequential_rounds(outcomes: Outcomes, ask: Callable[[np.ndarray], Sequence[float]],
                       n: int, reference: Sequence[str] | None,
                       rng: np.random.Generator) -> dict[str, float]:
    """Ask ``n`` prompts in rounds of :data:`SEQUENTIAL_BATCH`, each round the prompts that
    most shrink the posterior variance of the new model's task accuracies under the
    :class:`IRTPrior` (summed over tasks, weighted by task size: the numbers a router's
    decisions rest on). Within a round the choice is greedy with the posterior covariance
    updated as if each picked answer were in (its Fisher information does not depend on the
    answer); between rounds the ability is refitted to the real answers. So it asks where the
    model's answer is uncertain given its ability so far and the prompt's difficulty, in the
    tasks whose accuracy is least pinned down: not prompts every model fails, not a task
    already settled."""
    ref_q = _reference_quality(outcomes, reference)
    codes, n_tasks = _task_codes(outcomes)
    prior = IRTPrior.from_reference(ref_q, codes, n_tasks)
    x = prior.design
    sizes = np.bincount(codes, minlength=n_tasks).astype(float)
    jitter = 1e-9 * rng.random(len(x))  # random tie-break among identical prompts
    theta, precision = prior.mean.copy(), prior.precision.copy()
    open_ = np.ones(len(x), dtype=bool)
    answers: dict[str, float] = {}
    asked: list[int] = []
    while len(asked) < min(n, len(x)):
        p = prior.predict(theta)
        w = p * (1.0 - p)
        # d(accuracy of task t)/d(θ, β): the mean of w·x over the task's prompts
        grad = np.stack([(x[codes == t] * w[codes == t, None]).mean(axis=0)
                         if sizes[t] else np.zeros(x.shape[1]) for t in range(n_tasks)])
        cov = np.linalg.inv(precision)
        batch = []
        for _ in range(min(SEQUENTIAL_BATCH, n - len(asked), int(open_.sum()))):
            cx = x @ cov  # (prompts, d): Σ x_p
            spread = np.einsum("pd,pd->p", cx, x)  # posterior variance of each logit
            gain = (sizes[:, None] * (grad @ cx.T) ** 2).sum(axis=0) * w / (1.0 + w * spread)
            c = int(np.argmax(np.where(open_, gain + jitter, -np.inf)))
            batch.append(c)
            open_[c] = False
            cov -= w[c] * np.outer(cx[c], cx[c]) / (1.0 + w[c] * spread[c])
        if not batch:
            break
        rows = np.array(batch)
        answers.update(_ask(ask, outcomes, rows))
        asked.extend(batch)
        y = np.array([answers[outcomes.prompt_ids[i]] for i in asked])
        theta, precision = prior.posterior(np.array(asked), y, start=theta)
    return answers

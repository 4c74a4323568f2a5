"""Item-response theory: prompts have a difficulty and a topic, models an ability (IRT-Router).

Each prompt's embedding ``x`` is mapped to a scalar difficulty ``d(x)`` and a topic vector
``t(x)`` (learned linear maps, optionally after one shared hidden layer); each model ``m`` has an
ability vector ``a_m`` and an overall skill ``s_m``. The probability that ``m`` answers well is::

    quality(x, m) = sigmoid(a_m · t(x) + s_m − d(x))

Fitted in PyTorch on the known cells (binary cross-entropy, which accepts fractional scores) and
predicted in NumPy, so serving does not import torch.

Why IRT and not just matrix factorisation: once the prompt side (``d``, ``t``) is learned, a model
is only ``dim + 1`` numbers. A *new* model can therefore be added from a few dozen of its answers,
without retraining, by a small Bayesian logistic regression whose prior is the spread of the
abilities already known (:meth:`IRTRouter.add_model`). Which prompts to ask is chosen adaptively,
as in computerised adaptive testing and RADAR: the ones whose answers would shrink the new
ability's posterior the most.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.errors import RouterError
from polyroute.routers._torch import train_masked_bce
from polyroute.routers.base import Router
from polyroute.routers.params import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    RANDOM_STATE,
    SHARE,
    UNIT,
    Interval,
)
from polyroute.routers.registry import register

#: How :meth:`IRTRouter.add_model` picks the prompts to ask.
#: ``fisher``: D-optimal design, the prompt whose answer carries the most Fisher information about
#: the new ability (largest log-det gain of the posterior precision); ``variance``: the prompt
#: that most reduces the new model's predicted-quality variance averaged over the pool;
#: ``random``: uniform at random (the baseline). On the bundled data (benchmarks/irt_new_model.py)
#: ``variance`` routed best with 50–100 answers; ``fisher`` predicted best on average with 50 but
#: chases atypical prompts and misjudged one of the strong models; differences are small.
STRATEGIES = ("variance", "fisher", "random")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


@register("irt")
class IRTRouter(Router):
    """``dim``-dimensional topics and abilities; ``hidden`` > 0 adds one shared GELU layer before
    the difficulty and topic maps. Trained with full-batch AdamW and early stopping on a
    ``validation`` share of the training prompts. ``prior_shrinkage`` (in [0, 1]) pulls the
    covariance of known abilities towards a multiple of the identity when it serves as the prior
    of a new model (with few models the raw covariance is singular)."""

    adds_models = True
    _parameter_constraints = {"dim": POSITIVE_INT, "hidden": Interval(int, 0),
                              "epochs": POSITIVE_INT, "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
                              "dropout": SHARE, "validation": SHARE, "patience": POSITIVE_INT,
                              "prior_shrinkage": UNIT, "random_state": RANDOM_STATE}

    def __init__(self, dim: int = 16, hidden: int = 0, epochs: int = 400, lr: float = 3e-3,
                 weight_decay: float = 1e-4, dropout: float = 0.2, validation: float = 0.1,
                 patience: int = 30, prior_shrinkage: float = 0.1,
                 random_state: int = 0) -> None:
        self.dim = dim
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.validation = validation
        self.patience = patience
        self.prior_shrinkage = prior_shrinkage
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------
    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        import torch

        torch.manual_seed(self.random_state)
        m = outcomes.quality.shape[1]
        x = torch.as_tensor(features, dtype=torch.float32)

        width = features.shape[1]
        layers: list[torch.nn.Module] = []
        if self.hidden > 0:
            layers = [torch.nn.Linear(width, self.hidden), torch.nn.GELU()]
            width = self.hidden
        encoder = torch.nn.Sequential(*layers)
        topic = torch.nn.Linear(width, self.dim)
        difficulty = torch.nn.Linear(width, 1)
        ability = torch.nn.Parameter(torch.randn(m, self.dim) * 0.1)
        skill = torch.nn.Parameter(torch.zeros(m))
        drop = torch.nn.Dropout(self.dropout)
        params = [*encoder.parameters(), *topic.parameters(), *difficulty.parameters(),
                  ability, skill]

        def logits(train: bool) -> torch.Tensor:
            h = encoder(drop(x) if train else x)
            return topic(h) @ ability.T + skill - difficulty(h)

        train_masked_bce(params, logits, outcomes.quality, epochs=self.epochs, lr=self.lr,
                         weight_decay=self.weight_decay, validation=self.validation,
                         patience=self.patience, random_state=self.random_state)

        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().numpy().astype(np.float64).copy()

        self.encoder_weights_ = [arr(layers[0].weight).T, arr(layers[0].bias)] if layers else []
        # Difficulty is folded into the topic map as a last column with a constant ability of -1.
        self.topic_weight_ = np.hstack([arr(topic.weight).T, arr(difficulty.weight).T])
        self.topic_bias_ = np.concatenate([arr(topic.bias), arr(difficulty.bias)])
        # Ability rows: [a_m, s_m]; the skill multiplies the constant 1 appended to the topic.
        self.ability_ = np.hstack([arr(ability), arr(skill)[:, None]])
        self.n_fitted_models_ = m

    # -- estimating ----------------------------------------------------------------------------
    def prompt_parameters(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each prompt's design row ``[t(x), 1]`` (``(n, dim + 1)``) and difficulty ``d(x)``.

        A model with ability row ``r`` scores ``sigmoid(design @ r − difficulty)``.
        """
        self._check_fitted()
        h = np.asarray(features, dtype=np.float64)
        if self.encoder_weights_:
            w, b = self.encoder_weights_
            z = h @ w + b
            h = 0.5 * z * (1.0 + _erf(z / np.sqrt(2.0)))  # exact GELU, as torch's default
        t = h @ self.topic_weight_ + self.topic_bias_
        design = np.hstack([t[:, :-1], np.ones((len(t), 1))])
        return design, t[:, -1]

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        design, difficulty = self.prompt_parameters(features)
        return _sigmoid(design @ np.asarray(self.ability_).T - difficulty[:, None]), None

    # -- adding a model ------------------------------------------------------------------------
    def ability_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the fitted models' ability rows: what a new model is likely
        to look like before any of its answers is seen."""
        self._check_fitted()
        rows = np.asarray(self.ability_)[: self.n_fitted_models_]
        mean = rows.mean(axis=0)
        k = rows.shape[1]
        if len(rows) < 2:
            return mean, np.eye(k)
        cov = np.cov(rows, rowvar=False).reshape(k, k)
        target = np.eye(k) * max(float(np.trace(cov)) / k, 1e-6)
        s = float(np.clip(self.prior_shrinkage, 0.0, 1.0))
        return mean, (1.0 - s) * cov + s * target + 1e-6 * np.eye(k)

    def add_model_from_answers(self, name: str, features: np.ndarray,
                               quality: np.ndarray) -> None:
        """Add model ``name`` from its recorded quality on the prompts embedded in ``features``.

        Only the new model's ability row is learned (a MAP logistic regression under
        :meth:`ability_prior`); everything already learned stays as it is.
        """
        design, difficulty = self._check_new_model(name, features)
        y = np.asarray(quality, dtype=np.float64).reshape(-1)
        if y.shape != (len(design),):
            raise RouterError(f"add_model_from_answers: {len(design)} prompts but "
                              f"{y.size} quality values")
        _check_quality(y, "add_model_from_answers")
        mean, cov = self.ability_prior()
        row, _ = map_ability(design, difficulty, y, mean, np.linalg.inv(cov))
        self._append_model(name, row)

    def add_model(self, name: str, ask: Callable[[np.ndarray], np.ndarray], pool: np.ndarray,
                  budget: int = 100, *, strategy: str = "variance", batch_size: int = 10,
                  random_state: int = 0) -> np.ndarray:
        """Add model ``name`` by asking it at most ``budget`` prompts from ``pool``.

        ``pool`` holds the features of the prompts one may ask; ``ask(indices)`` must return the
        new model's quality (in [0, 1], NaN if the call failed) on those rows of the pool. Prompts
        are chosen ``batch_size`` at a time by ``strategy`` (see :data:`STRATEGIES`), and the
        ability posterior is updated after each batch. Returns the asked pool indices in order.
        """
        design, difficulty = self._check_new_model(name, pool)
        if strategy not in STRATEGIES:
            raise RouterError(f"unknown strategy {strategy!r}; choose from: "
                              f"{', '.join(STRATEGIES)}")
        if not isinstance(budget, (int, np.integer)) or not 1 <= budget <= len(design):
            raise RouterError(f"budget must be an integer between 1 and the pool size "
                              f"({len(design)}), got {budget!r}")
        if batch_size < 1:
            raise RouterError(f"batch_size must be at least 1, got {batch_size!r}")
        rng = np.random.default_rng(random_state)
        mean, cov = self.ability_prior()
        prior_precision = np.linalg.inv(cov)
        row, precision = mean.copy(), prior_precision.copy()
        open_ = np.ones(len(design), dtype=bool)
        asked: list[int] = []
        answers: list[float] = []
        while len(asked) < budget:
            k = min(batch_size, budget - len(asked))
            if strategy == "random":
                batch = rng.choice(np.flatnonzero(open_), size=k, replace=False)
            else:
                batch = _pick_batch(design, difficulty, row, np.linalg.inv(precision), open_, k,
                                    strategy)
            y = np.asarray(ask(np.asarray(batch)), dtype=np.float64).reshape(-1)
            if y.shape != (k,):
                raise RouterError(f"ask() returned {y.size} values for {k} prompts")
            _check_quality(y, "ask()")
            open_[batch] = False
            asked.extend(int(i) for i in batch)
            answers.extend(float(v) for v in y)
            idx = np.asarray(asked)
            row, precision = map_ability(design[idx], difficulty[idx], np.asarray(answers),
                                          mean, prior_precision, start=row)
        self._append_model(name, row)
        return np.asarray(asked)

    def _check_new_model(self, name: str, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        if not isinstance(name, str) or not name:
            raise RouterError(f"a new model needs a non-empty name, got {name!r}")
        if name in self.models_:
            raise RouterError(f"model {name!r} is already known to this router")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.n_features_in_ or not len(features):
            raise RouterError(f"features have shape {features.shape}, expected "
                              f"(n >= 1, {self.n_features_in_})")
        return self.prompt_parameters(features)

    def _append_model(self, name: str, row: np.ndarray) -> None:
        self.ability_ = np.vstack([np.asarray(self.ability_), row[None, :]])
        self.models_ = [*self.models_, name]


# -- the new model's ability: Bayesian logistic regression with a known offset ---------------------
def map_ability(design: np.ndarray, difficulty: np.ndarray, y: np.ndarray, mean: np.ndarray,
                 prior_precision: np.ndarray, start: np.ndarray | None = None,
                 iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """MAP ability row and the posterior precision (Laplace) by Newton's method, for the logit
    ``design @ row − difficulty`` under a Gaussian prior (``mean``, ``prior_precision``).

    Unknown answers (NaN) are ignored; fractional ones enter the Bernoulli likelihood as soft
    labels, exactly as in training. Shared with onboarding (polyroute.onboarding.calibrate),
    whose imputation models are the same Bayesian logistic regression with other designs.
    """
    keep = ~np.isnan(y)
    z, d, y = design[keep], difficulty[keep], y[keep]
    row = mean.copy() if start is None else start.copy()
    precision = prior_precision
    for _ in range(iterations):
        p = _sigmoid(z @ row - d)
        w = p * (1.0 - p)
        grad = z.T @ (y - p) - prior_precision @ (row - mean)
        precision = (z * w[:, None]).T @ z + prior_precision
        step = np.linalg.solve(precision, grad)
        row = row + step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    p = _sigmoid(z @ row - d)
    precision = (z * (p * (1.0 - p))[:, None]).T @ z + prior_precision
    return row, precision


def _pick_batch(design: np.ndarray, difficulty: np.ndarray, row: np.ndarray, cov: np.ndarray,
                open_: np.ndarray, k: int, strategy: str) -> np.ndarray:
    """Greedy batch design: pick the best prompt, update the covariance as if its answer were
    in (the Fisher information does not depend on the answer), pick again."""
    p = _sigmoid(design @ row - difficulty)
    w = p * (1.0 - p)
    cov = cov.copy()
    available = open_.copy()
    chosen: list[int] = []
    for _ in range(k):
        cz = design @ cov  # (n, k): Σ z_i for every prompt
        s = np.einsum("ij,ij->i", cz, design)  # z_i' Σ z_i: the logit's posterior variance
        if strategy == "fisher":
            gain = np.log1p(w * s)  # log-det gain of the precision
        else:  # "variance": mean drop of the predicted quality's variance over the pool
            pool_cz = cz * w[:, None]  # w_j Σ z_j: the quality's sensitivity at prompt j
            spread = pool_cz.T @ pool_cz / len(design)  # Σ M Σ with M = mean_j w_j² z_j z_j'
            gain = w * np.einsum("ij,jk,ik->i", design, spread, design) / (1.0 + w * s)
        gain = np.where(available, gain, -np.inf)
        i = int(np.argmax(gain))
        chosen.append(i)
        available[i] = False
        u = cz[i]
        cov -= w[i] * np.outer(u, u) / (1.0 + w[i] * s[i])  # Sherman–Morrison
    return np.asarray(chosen)


def _check_quality(y: np.ndarray, where: str) -> None:
    known = y[~np.isnan(y)]
    if known.size and (known.min() < 0 or known.max() > 1):
        raise RouterError(f"{where}: quality values must lie in [0, 1] (NaN for unknown)")


def _erf(z: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(z)

"""Cascade: call a cheap model first, escalate to a stronger one only when its answer looks weak.

FrugalGPT / AutoMix style. The chain for a prompt is, by default, the models on that prompt's
*estimated* cost–quality frontier (each step dearer and better than the last), cheapest first, up to
the model a trade-off policy with weight ``lam`` would pick. A step's answer is accepted when its
confidence reaches ``threshold``; otherwise the next model is called.

Confidence = the router's prior belief that the model answers well (its estimated quality, minus
``kappa`` × its uncertainty) × an answer score in [0, 1] from an :class:`AnswerScorer` that looks at
the answer once it exists (1 when nothing is known). Multiplying keeps thresholds on the prior's
scale, so a threshold calibrated offline (where no answers exist) keeps its meaning in the gateway,
and a heuristic scorer can only *add* escalations for visibly failed answers.

Why ``skip_hopeless`` (default on): a score in [0, 1] can only lower the confidence, so a step whose
prior is already below the threshold would be called, paid for and always rejected. Skipping it
before the call makes the cascade with no answer signal exactly a routing policy (the cheapest
frontier model whose estimate reaches the threshold, like :class:`FloorPolicy`); the cascade only
buys something when an answer signal is available. ``skip_hopeless=False`` is the literal cascade
(always start at the cheapest step) and is kept for comparison.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from polyroute.errors import PolicyError
from polyroute.policies.base import order_by, require_cost, tradeoff_scores
from polyroute.routers.base import Estimates


# -- answer scorers (used by the gateway; offline there is no answer) ------------------------------
@runtime_checkable
class AnswerScorer(Protocol):
    """Looks at an answer and says how plausible it is that it is acceptable, in [0, 1]."""

    def score(self, prompt: str, answer: str) -> float:
        ...


#: Openings that mark a refusal or a non-answer (checked case-insensitively at the answer's start).
DEFAULT_REFUSALS: tuple[str, ...] = (
    r"i'?m sorry", r"i am sorry", r"sorry,? (but )?i", r"i can'?not", r"i can'?t", r"i am unable",
    r"i'?m unable", r"i'?m not able", r"i am not able", r"as an ai", r"i do(?: not|n'?t) know",
    r"unfortunately,? i",
)


class HeuristicScorer:
    """Flags visibly failed answers; says nothing (1.0) about answers that look normal.

    Empty answer → 0; refusal opening → ``refusal_score``; an unclosed code fence (the answer
    was cut off) → ``truncated_score``; a long answer that keeps repeating itself →
    ``repetition_score``; shorter than ``min_chars`` → ``short_score``. The lowest applicable
    score wins. Short answers are not penalised by default: "B" or "42" is a complete answer to
    many prompts.
    """

    def __init__(self, *, min_chars: int = 1, refusals: Sequence[str] = DEFAULT_REFUSALS,
                 refusal_score: float = 0.1, truncated_score: float = 0.5,
                 repetition_score: float = 0.3, short_score: float = 0.3) -> None:
        for name, value in (("refusal_score", refusal_score), ("truncated_score", truncated_score),
                            ("repetition_score", repetition_score), ("short_score", short_score)):
            if not 0 <= value <= 1:
                raise PolicyError(f"{name} must lie in [0, 1], got {value!r}")
        self.min_chars = int(min_chars)
        self.refusals = tuple(refusals)
        self.refusal_score = refusal_score
        self.truncated_score = truncated_score
        self.repetition_score = repetition_score
        self.short_score = short_score
        self._refusal_re = re.compile(r"^\W*(?:" + "|".join(self.refusals) + r")", re.IGNORECASE)

    def score(self, prompt: str, answer: str) -> float:
        text = (answer or "").strip()
        if not text:
            return 0.0
        scores = [1.0]
        if self._refusal_re.search(text[:200]):
            scores.append(self.refusal_score)
        if text.count("```") % 2 == 1:
            scores.append(self.truncated_score)
        if _repetitive(text):
            scores.append(self.repetition_score)
        if len(text) < self.min_chars:
            scores.append(self.short_score)
        return min(scores)


def _repetitive(text: str, min_lines: int = 6, max_unique: float = 0.3) -> bool:
    """True for a long answer most of whose non-empty lines are copies (a generation loop)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return len(lines) >= min_lines and len(set(lines)) / len(lines) <= max_unique


def check_answer_score(score: float) -> float:
    """An answer score must be a number in [0, 1]; anything else means a misconfigured scorer."""
    if not isinstance(score, (int, float)) or math.isnan(score) or not 0 <= score <= 1:
        raise PolicyError(f"an answer scorer must return a number in [0, 1], got {score!r}")
    return float(score)


# -- decisions -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CascadeDecision:
    """One prompt's cascade: call ``chain`` in order, stop at the first accepted answer.

    ``thresholds[j]`` applies to step ``j`` (the last step is always accepted); ``prior[j]`` is the
    router's confidence in step ``j`` before its answer is seen. ``fallbacks`` are the other models,
    best trade-off first, for when a chain member is unavailable.
    """

    chain: tuple[str, ...]
    thresholds: tuple[float, ...]
    prior: tuple[float, ...]
    estimated_cost: tuple[float, ...]
    fallbacks: tuple[str, ...]
    policy: str = "cascade"

    @property
    def model(self) -> str:
        return self.chain[0]

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.chain + self.fallbacks

    def confidence(self, step: int, answer_score: float | None = None) -> float:
        """Prior × answer score (the prior alone when no scorer looked at the answer)."""
        s = 1.0 if answer_score is None else check_answer_score(answer_score)
        return self.prior[step] * s

    def accept(self, step: int, answer_score: float | None = None) -> bool:
        """Whether to return step ``step``'s answer rather than call the next model."""
        if step >= len(self.chain) - 1:
            return True
        return self.confidence(step, answer_score) >= self.thresholds[step]

    def final(self, confidences: Sequence[float]) -> int:
        """Which called step's answer to return: the most confident one, the later on ties."""
        if not confidences:
            raise PolicyError("no step of the cascade was called")
        best = max(range(len(confidences)), key=lambda j: (confidences[j], j))
        return best


# -- the policy ------------------------------------------------------------------------------------
class CascadePolicy:
    """Cascade over each prompt's estimated frontier (or a fixed ``chain`` of model names).

    ``threshold`` in [0, 1] is the knob: higher escalates more often (better, dearer). ``lam``
    bounds the chain: its last step is the frontier model the trade-off policy with weight ``lam``
    picks (0 = the best estimated model). ``max_calls`` caps how many models one prompt may call
    (the first ``max_calls − 1`` steps and the last are kept). ``kappa`` subtracts that many
    uncertainties from the prior (needs a router that estimates uncertainty).
    """

    name = "cascade"

    def __init__(self, threshold: float = 0.7, *, lam: float = 0.0,
                 chain: Sequence[str] | None = None, max_calls: int = 2, kappa: float = 0.0,
                 skip_hopeless: bool = True) -> None:
        if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise PolicyError(f"the cascade threshold must lie in [0, 1], got {threshold!r}")
        if not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise PolicyError(f"the trade-off weight λ must be a number >= 0, got {lam!r}")
        if not isinstance(max_calls, int) or max_calls < 1:
            raise PolicyError(f"max_calls must be an integer >= 1, got {max_calls!r}")
        if not isinstance(kappa, (int, float)) or kappa < 0:
            raise PolicyError(f"kappa must be a number >= 0, got {kappa!r}")
        if chain is not None:
            chain = tuple(chain)
            if not chain or len(set(chain)) != len(chain):
                raise PolicyError("a fixed cascade chain needs at least one model, each once")
        self.threshold = float(threshold)
        self.lam = float(lam)
        self.chain = chain
        self.max_calls = max_calls
        self.kappa = float(kappa)
        self.skip_hopeless = bool(skip_hopeless)

    # -- building chains ---------------------------------------------------------------------------
    def prior(self, estimates: Estimates) -> np.ndarray:
        """``(n, m)`` confidence in each model before its answer is seen."""
        if self.kappa == 0:
            return estimates.quality
        if estimates.uncertainty is None:
            raise PolicyError("kappa > 0 needs estimates with uncertainty; this router gives none")
        return np.clip(estimates.quality - self.kappa * estimates.uncertainty, 0.0, 1.0)

    def chains(self, estimates: Estimates) -> np.ndarray:
        """``(n, L)`` column indices to call in order, padded with −1."""
        cost = require_cost(estimates)
        prior = self.prior(estimates)
        if self.chain is None:
            base = _frontier_chains(prior, cost, tradeoff_scores(estimates, self.lam))
        else:
            base = np.tile(self._fixed_columns(estimates), (estimates.n_prompts, 1))
        if self.skip_hopeless:
            base = _drop_hopeless(base, prior, self.threshold)
        return _truncate(base, self.max_calls)

    def _fixed_columns(self, estimates: Estimates) -> np.ndarray:
        index = {m: j for j, m in enumerate(estimates.models)}
        unknown = [m for m in self.chain or () if m not in index]
        if unknown:
            raise PolicyError(f"unknown model(s) in the cascade chain: {', '.join(unknown)}; "
                              f"known: {', '.join(estimates.models)}")
        return np.array([index[m] for m in self.chain or ()])

    # -- the Policy protocol -----------------------------------------------------------------------
    def rank(self, estimates: Estimates) -> np.ndarray:
        """The chain first (in calling order), then the other models by trade-off score."""
        chains = self.chains(estimates)
        order = order_by(tradeoff_scores(estimates, self.lam))
        out = np.empty_like(order)
        for i in range(len(order)):
            head = chains[i][chains[i] >= 0]
            out[i] = np.concatenate([head, order[i][~np.isin(order[i], head)]])
        return out

    def choose(self, estimates: Estimates) -> np.ndarray:
        """The first model each prompt calls."""
        return self.chains(estimates)[:, 0]

    def decide(self, estimates: Estimates) -> list[CascadeDecision]:
        """Per-prompt :class:`CascadeDecision` objects for the gateway and the CLI."""
        chains = self.chains(estimates)
        ranked = self.rank(estimates)
        prior = self.prior(estimates)
        cost = require_cost(estimates)
        out = []
        for i, row in enumerate(chains):
            cols = row[row >= 0]
            out.append(CascadeDecision(
                chain=tuple(estimates.models[j] for j in cols),
                thresholds=(self.threshold,) * (len(cols) - 1),
                prior=tuple(float(prior[i, j]) for j in cols),
                estimated_cost=tuple(float(cost[i, j]) for j in cols),
                fallbacks=tuple(estimates.models[j] for j in ranked[i][len(cols):]),
                policy=self.name,
            ))
        return out

    # -- offline evaluation ------------------------------------------------------------------------
    def simulate(self, estimates: Estimates, quality: np.ndarray, cost: np.ndarray,
                 answer_scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-prompt recorded (quality, cost), charging every model the cascade called.

        ``answer_scores`` ``(n, m)`` is what a scorer would say of each model's recorded answer (1
        everywhere when omitted: offline there are usually no answers to look at).
        """
        chains = self.chains(estimates)
        prior = self.prior(estimates)
        n, steps = chains.shape
        rows = np.arange(n)
        if answer_scores is not None and answer_scores.shape != quality.shape:
            raise PolicyError(f"answer_scores has shape {answer_scores.shape}, "
                              f"expected {quality.shape}")
        active = np.ones(n, dtype=bool)
        paid = np.zeros(n)
        best_conf = np.full(n, -np.inf)
        got = np.full(n, np.nan)
        for step in range(steps):
            col = chains[:, step]
            call = active & (col >= 0)
            c = np.where(call, col, 0)
            paid += np.where(call, cost[rows, c], 0.0)
            s = 1.0 if answer_scores is None else answer_scores[rows, c]
            conf = prior[rows, c] * s
            better = call & (conf >= best_conf)  # ties go to the later, stronger step
            got = np.where(better, quality[rows, c], got)
            best_conf = np.where(better, conf, best_conf)
            has_next = chains[:, step + 1] >= 0 if step + 1 < steps else np.zeros(n, bool)
            active = call & has_next & (conf < self.threshold)
        return got, paid


# -- chain helpers (vectorised over prompts) -------------------------------------------------------
def _frontier_chains(prior: np.ndarray, cost: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's estimated frontier, cheapest first, ending at its best-scoring frontier model."""
    m = prior.shape[1]
    by_cost = np.lexsort((-prior, cost), axis=1)  # cheapest first, better first on equal cost
    p_sorted = np.take_along_axis(prior, by_cost, axis=1)
    running = np.maximum.accumulate(p_sorted, axis=1)
    on = np.ones_like(p_sorted, dtype=bool)
    on[:, 1:] = p_sorted[:, 1:] > running[:, :-1]
    s_sorted = np.where(on, np.take_along_axis(scores, by_cost, axis=1), -np.inf)
    target = np.argmax(s_sorted, axis=1)  # first (cheapest) frontier member on ties
    keep = on & (np.arange(m)[None, :] <= target[:, None])
    return _pack(by_cost, keep)


def _drop_hopeless(chains: np.ndarray, prior: np.ndarray, threshold: float) -> np.ndarray:
    """Remove steps (except each row's last) whose prior is already below the threshold."""
    valid = chains >= 0
    last = valid & ~np.concatenate([valid[:, 1:], np.zeros((len(chains), 1), bool)], axis=1)
    p = np.take_along_axis(prior, np.where(valid, chains, 0), axis=1)
    return _pack(chains, valid & ((p >= threshold) | last))


def _truncate(chains: np.ndarray, max_calls: int) -> np.ndarray:
    """Keep each row's first ``max_calls − 1`` steps and its last one."""
    valid = chains >= 0
    length = valid.sum(axis=1)
    pos = np.arange(chains.shape[1])[None, :]
    keep = valid & ((pos < max_calls - 1) | (pos == length[:, None] - 1))
    return _pack(chains, keep)


def _pack(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Move each row's kept entries to the front (order preserved), pad with −1, trim."""
    width = max(1, int(keep.sum(axis=1).max(initial=0)))
    order = np.argsort(~keep, axis=1, kind="stable")
    packed = np.take_along_axis(np.where(keep, values, -1), order, axis=1)[:, :width]
    return packed

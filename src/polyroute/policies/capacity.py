"""Routing under per-model capacity: no backend may take more than its share of the traffic.

Greedy routing sends every prompt to its own best model, so the most popular backend overflows and
requests are rejected or queue without bound. Two remedies, one per setting:

* **Batch** (:class:`CapacityPolicy`): assign a batch of prompts jointly. The relaxed problem is
  optimal transport — prompts carry uniform mass, models have capacity shares, utility is the
  trade-off score — solved with entropic regularisation by Sinkhorn iterations (log domain), then
  rounded to an assignment that respects the integer capacities exactly. Prompts whose advantage
  from their favourite model is smallest are the ones moved, which is what costs least quality.
* **Online** (:class:`BiasBalancer` + :class:`BalancedPolicy`): keep one bias per model, add it to
  the scores, and nudge it from observed load, ``bias_m += γ · sign(capacity_m − load_m)``: the
  auxiliary-loss-free balancing of DeepSeek-V3's mixture-of-experts router. Unlike there, a
  capacity is an upper bound, not a target, so the bias never rises above ``max_bias`` (0): spare
  room on a backend does not pull traffic towards it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import logsumexp

from polyroute.errors import PolicyError
from polyroute.policies.base import order_by, tradeoff_scores
from polyroute.routers.base import Estimates

UNASSIGNED = -1


# -- optimal transport -----------------------------------------------------------------------------
def sinkhorn(utility: np.ndarray, row_mass: np.ndarray, col_mass: np.ndarray, *,
             epsilon: float = 0.01, max_iter: int = 5000, tol: float = 1e-6) -> np.ndarray:
    """Entropic optimal transport maximising Σ plan × utility; masses must have equal sums.

    Returns the ``(n, m)`` plan whose rows sum to ``row_mass`` and columns to ``col_mass`` (up to
    ``tol`` of the total mass). Zero-mass rows or columns get zero plan. Smaller ``epsilon`` =
    closer to the unregularised optimum. Log-domain iterations with ε-scaling (start hot, halve
    down to ``epsilon``, warm-starting the dual potentials): at a small ``epsilon`` plain Sinkhorn
    crawls on the degenerate problems capacity limits produce.
    """
    if epsilon <= 0:
        raise PolicyError(f"the Sinkhorn temperature epsilon must be > 0, got {epsilon!r}")
    r = np.asarray(row_mass, dtype=float)
    c = np.asarray(col_mass, dtype=float)
    if not math.isclose(r.sum(), c.sum(), rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(f"row mass {r.sum()} and column mass {c.sum()} differ")
    plan = np.zeros(utility.shape)
    rows, cols = r > 0, c > 0
    u = utility[np.ix_(rows, cols)]
    log_r, log_c = np.log(r[rows]), np.log(c[cols])
    f = np.zeros(u.shape[0])  # dual potentials, in utility units
    g = np.zeros(u.shape[1])
    eps = max(epsilon, float(np.ptp(u)) if u.size else epsilon)
    iterations = 0
    while True:
        final = eps <= epsilon
        for _ in range(max_iter if final else 50):
            f = eps * (log_r - logsumexp((u + g[None, :]) / eps, axis=1))
            g = eps * (log_c - logsumexp((u + f[:, None]) / eps, axis=0))
            iterations += 1
            # columns are exact after the g-step; check the rows
            got = np.exp(logsumexp((u + f[:, None] + g[None, :]) / eps, axis=1))
            if np.abs(got - r[rows]).sum() <= tol * r.sum() or iterations >= max_iter:
                break
        if final or iterations >= max_iter:
            break
        eps = max(epsilon, eps / 2)
    plan[np.ix_(rows, cols)] = np.exp((u + f[:, None] + g[None, :]) / eps)
    return plan


def round_plan(plan: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Integer assignment from a transport plan, at most ``slots[j]`` rows per column.

    Greedy in decreasing plan weight: the plan's confident entries are kept, the split ones are
    settled last. Rows left without a column (all slots taken) get :data:`UNASSIGNED`.
    """
    n, m = plan.shape
    left = np.asarray(slots, dtype=int).copy()
    out = np.full(n, UNASSIGNED)
    for flat in np.argsort(-plan, axis=None, kind="stable"):
        i, j = divmod(int(flat), m)
        if out[i] == UNASSIGNED and left[j] > 0:
            out[i] = j
            left[j] -= 1
    return out


def slots_from_shares(shares: np.ndarray, n: int) -> np.ndarray:
    """Integer slots per column for a batch of ``n``: ⌊share × n⌋, plus one for the largest
    remainders while the slots cannot hold the batch (so a share is exceeded by < 1 prompt)."""
    exact = np.asarray(shares, dtype=float) * n
    slots = np.floor(exact + 1e-9).astype(int)
    remainder = exact - slots
    for j in np.argsort(-remainder, kind="stable"):
        if slots.sum() >= n or remainder[j] <= 1e-9:
            break
        slots[j] += 1
    return slots


def assign_with_capacity(utility: np.ndarray, slots: np.ndarray, *, epsilon: float = 0.01,
           allow_unassigned: bool = False, max_iter: int = 5000,
           tol: float = 1e-6) -> np.ndarray:
    """``(n,)`` column per row maximising total utility with at most ``slots[j]`` rows in column j.

    Spare slots are absorbed by a dummy row; if the slots cannot hold every row, either a dummy
    "unassigned" column takes the overflow (``allow_unassigned``; those rows get -1) or
    :class:`PolicyError` is raised.
    """
    n, m = utility.shape
    slots = np.asarray(slots, dtype=int)
    if slots.shape != (m,) or (slots < 0).any():
        raise PolicyError(f"slots must be {m} non-negative integers, got {slots.tolist()}")
    if n == 0:
        return np.empty(0, dtype=int)
    greedy = np.argmax(utility, axis=1)
    if (np.bincount(greedy, minlength=m) <= slots).all():
        return greedy  # no capacity binds: each row's favourite is the exact optimum
    total = int(slots.sum())
    u = utility - utility.max(axis=1, keepdims=True)  # row shifts do not change the optimum
    row_mass = np.ones(n)
    col_mass = slots.astype(float)
    if total < n:
        if not allow_unassigned:
            raise PolicyError(f"the capacities hold only {total} of the batch's {n} prompts; "
                              f"raise them or allow unassigned prompts")
        # Waiting is valued as the prompt's own best (it gets its turn later): the prompts that
        # wait are those that would otherwise be displaced to a worse model.
        u = np.concatenate([u, np.zeros((n, 1))], axis=1)
        col_mass = np.append(col_mass, n - total)
    elif total > n:
        u = np.concatenate([u, np.zeros((1, u.shape[1]))], axis=0)  # spare capacity
        row_mass = np.append(row_mass, total - n)
    plan = sinkhorn(u, row_mass, col_mass, epsilon=epsilon, max_iter=max_iter, tol=tol)[:n]
    return round_plan(plan[:, :m], slots)


class CapacityPolicy:
    """Trade-off routing of a batch with each model taking at most its ``capacity`` share.

    ``capacity`` maps model names to the largest share of a batch (0–1) each may take; models not
    named are unlimited. The utility is the trade-off score at weight ``lam``; ``epsilon`` is the
    Sinkhorn temperature in the same units (quality points).
    """

    name = "capacity"

    def __init__(self, capacity: Mapping[str, float], lam: float = 0.0, *,
                 epsilon: float = 0.01, allow_unassigned: bool = False) -> None:
        if not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise PolicyError(f"the trade-off weight λ must be a number >= 0, got {lam!r}")
        for model, share in capacity.items():
            if not isinstance(share, (int, float)) or not 0 <= share <= 1:
                raise PolicyError(f"the capacity share of {model!r} must lie in [0, 1], "
                                  f"got {share!r}")
        if not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise PolicyError(f"epsilon must be a number > 0, got {epsilon!r}")
        self.capacity = dict(capacity)
        self.lam = float(lam)
        self.epsilon = float(epsilon)
        self.allow_unassigned = bool(allow_unassigned)

    def shares(self, models: Sequence[str]) -> np.ndarray:
        unknown = sorted(set(self.capacity) - set(models))
        if unknown:
            raise PolicyError(f"capacity given for unknown model(s): {', '.join(unknown)}; "
                              f"known: {', '.join(models)}")
        return np.array([self.capacity.get(m, 1.0) for m in models])

    def assign(self, estimates: Estimates, slots: np.ndarray | None = None) -> np.ndarray:
        """``(n,)`` column per prompt (-1 = wait for the next batch, if allowed).

        ``slots`` gives absolute per-model counts for this batch instead of the shares (a serving
        loop passes the free capacity of the coming window).
        """
        if slots is None:
            slots = slots_from_shares(self.shares(estimates.models), estimates.n_prompts)
        return assign_with_capacity(tradeoff_scores(estimates, self.lam), np.asarray(slots),
                      epsilon=self.epsilon, allow_unassigned=self.allow_unassigned)

    def rank(self, estimates: Estimates) -> np.ndarray:
        """The assigned model first, then the rest by trade-off score."""
        pick = self.assign(estimates)
        scores = tradeoff_scores(estimates, self.lam)
        if (pick == UNASSIGNED).any():
            return order_by(scores)  # a waiting prompt has no assigned model to put first
        return order_by(scores, first=pick)

    def choose(self, estimates: Estimates) -> np.ndarray:
        return self.assign(estimates)


# -- online balancing ------------------------------------------------------------------------------
class BiasBalancer:
    """Per-model score biases updated from observed load; the one piece of state online routing
    keeps. ``load`` and ``capacity`` passed to :meth:`update` share a unit (requests/s, in-flight
    requests, or shares) and follow the order of ``models``."""

    def __init__(self, models: Sequence[str], gamma: float = 0.01, *, max_bias: float = 0.0,
                 min_bias: float = -1.0) -> None:
        if not isinstance(gamma, (int, float)) or not gamma > 0:
            raise PolicyError(f"the bias step gamma must be a number > 0, got {gamma!r}")
        if min_bias > max_bias:
            raise PolicyError(f"min_bias ({min_bias}) exceeds max_bias ({max_bias})")
        self.models = tuple(models)
        self.gamma = float(gamma)
        self.max_bias = float(max_bias)
        self.min_bias = float(min_bias)
        self.bias_ = np.zeros(len(self.models))

    def update(self, load: np.ndarray, capacity: np.ndarray) -> np.ndarray:
        """One step: lower the bias of models over capacity, raise it (up to ``max_bias``) of
        models under it. Returns the new biases."""
        load = np.asarray(load, dtype=float)
        capacity = np.asarray(capacity, dtype=float)
        if load.shape != self.bias_.shape or capacity.shape != self.bias_.shape:
            raise PolicyError(f"load and capacity need one value per model ({len(self.models)})")
        self.bias_ = np.clip(self.bias_ + self.gamma * np.sign(capacity - load),
                             self.min_bias, self.max_bias)
        return self.bias_

    def reset(self) -> None:
        self.bias_ = np.zeros(len(self.models))


class BalancedPolicy:
    """Trade-off routing with the balancer's biases added: a pure function of (estimates, state)."""

    name = "balanced"

    def __init__(self, balancer: BiasBalancer, lam: float = 0.0) -> None:
        if not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise PolicyError(f"the trade-off weight λ must be a number >= 0, got {lam!r}")
        self.balancer = balancer
        self.lam = float(lam)

    def scores(self, estimates: Estimates) -> np.ndarray:
        if tuple(estimates.models) != self.balancer.models:
            raise PolicyError("the balancer was built for models "
                              f"{', '.join(self.balancer.models)}, the estimates are for "
                              f"{', '.join(estimates.models)}")
        return tradeoff_scores(estimates, self.lam) + self.balancer.bias_[None, :]

    def rank(self, estimates: Estimates) -> np.ndarray:
        return order_by(self.scores(estimates))

    def choose(self, estimates: Estimates) -> np.ndarray:
        return np.argmax(self.scores(estimates), axis=1)

"""What routing did (or, in shadow mode, would have done) on logged traffic: a savings report.

For every finished request in the window that a profile routed, three costs are compared:

* **routed** — what the router's choice cost: the recorded cost when it answered; in shadow mode
  (the default model answered) the routed model's cost on the same request — the real cost of
  its answer where a sampled comparison asked it, else the request's tokens at its prices;
* **always-default** — the same request's tokens at the default model's prices;
* **always-best** — the same at the prices of the model with the best estimated quality.

Re-pricing a request at another model's prices keeps its prompt and answer tokens: another model
would answer at another length, which only the sampled comparisons measure. Requests without
token counts are priced by the decision's cost estimate for that model, if it has one, else
left out (and counted).

Quality, where it is known: the router's own estimates for the three choices (every routed
request has them); the clients' feedback scores, per model that served; and, in shadow mode, the
judge's blind verdicts of routed against default answers. Each mean comes with a 95 % interval:
bootstrap over requests for costs and savings, Wilson for win rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from polyroute.errors import ConfigError
from polyroute.store import OK, RequestSummary, ShadowComparison


@dataclass(frozen=True)
class Prices:
    """Dollars per million input and output tokens of one model."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass
class SavingsReport:
    since: float | None
    until: float | None
    default: str
    best: str
    requests: int
    #: Routed requests left out: no tokens and no estimate to price them with.
    unpriced: int
    shadow_requests: int
    #: Mean dollars per request and the total, per strategy (routed, always-default, always-best).
    cost_per_request: dict[str, Interval]
    total_cost: dict[str, float]
    #: 1 − routed / baseline total (positive: routing spent less).
    savings_vs_default: Interval
    savings_vs_best: Interval
    #: Mean estimated quality of each strategy's choice (the router's estimates).
    estimated_quality: dict[str, Interval]
    #: Mean feedback score per model that served, with the number of scores.
    feedback: dict[str, tuple[Interval, int]]
    #: Judge verdicts of routed vs default answers: counts, and the routed win rate with ties
    #: counted half.
    verdicts: dict[str, int]
    routed_win_rate: Interval | None
    #: What the shadow comparisons (routed calls and judge calls) cost the operator.
    shadow_cost: float
    share: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        def iv(x: Interval | None) -> dict | None:
            return None if x is None else {"value": x.value, "low": x.low, "high": x.high}

        return {
            "since": self.since, "until": self.until, "default": self.default,
            "best": self.best, "requests": self.requests, "unpriced": self.unpriced,
            "shadow_requests": self.shadow_requests,
            "cost_per_request": {k: iv(v) for k, v in self.cost_per_request.items()},
            "total_cost": self.total_cost,
            "savings_vs_default": iv(self.savings_vs_default),
            "savings_vs_best": iv(self.savings_vs_best),
            "estimated_quality": {k: iv(v) for k, v in self.estimated_quality.items()},
            "feedback": {m: {"mean": iv(v), "n": n} for m, (v, n) in self.feedback.items()},
            "verdicts": self.verdicts, "routed_win_rate": iv(self.routed_win_rate),
            "shadow_cost": self.shadow_cost, "routed_share": self.share,
        }


STRATEGIES = ("routed", "always-default", "always-best")

#: Pass as ``default`` to compare with the best model only (the default baseline is the best).
BEST = "<best>"


def savings_report(requests: Iterable[RequestSummary], comparisons: Iterable[ShadowComparison],
                   prices: Mapping[str, Prices], *, default: str | None = None,
                   best: str | None = None, since: float | None = None,
                   until: float | None = None, resamples: int = 1000,
                   seed: int = 0) -> SavingsReport:
    """The report over ``requests`` (a store's :meth:`~polyroute.store.Store.requests_between`)
    and the window's shadow ``comparisons``; raises :class:`ConfigError` when the baselines
    cannot be told (no routed requests, or an unknown model named)."""
    routed = [r for r in requests if r.status == OK and r.chosen is not None and r.candidates
              and r.profile is not None]
    if not routed:
        raise ConfigError("no routed requests in this window: nothing to report (requests "
                          "that named a backend directly are not routed)")
    by_request = {c.request_id: c for c in comparisons}
    default = default or _shadow_default(routed)
    if default is None:
        raise ConfigError("say which model is the default to compare with: --default MODEL "
                          "(shadow mode's served model is used when there is one)")
    best = best or _best_estimated(routed)
    if default == BEST:
        default = best
    for what, model in (("--default", default), ("--best", best)):
        if model not in prices:
            raise ConfigError(f"{what}: {model!r} is not a backend of the config; known: "
                              f"{', '.join(sorted(prices))}")
    rows: list[tuple[float, float, float]] = []
    quality: list[tuple[float, float, float]] = []
    unpriced = shadow_n = 0
    share: dict[str, int] = {}
    for r in routed:
        shadow = (r.explain or {}).get("shadow")
        choice = shadow["routed"] if shadow else r.chosen
        shadow_n += bool(shadow)
        comparison = by_request.get(r.id)
        if shadow is None:
            routed_cost: float | None = r.cost
        elif comparison is not None and comparison.verdict is not None and \
                comparison.verdict != "same":
            routed_cost = comparison.routed_cost
        else:
            routed_cost = _priced(r, choice, prices)
        costs = (routed_cost, _priced(r, default, prices), _priced(r, best, prices))
        if any(c is None for c in costs):
            unpriced += 1
            continue
        rows.append(costs)  # type: ignore[arg-type]
        share[choice] = share.get(choice, 0) + 1
        est = {c.model: c.estimated_quality for c in r.candidates}
        if all(est.get(m) is not None for m in (choice, default, best)):
            quality.append((est[choice], est[default], est[best]))
    if not rows:
        raise ConfigError("no routed request in this window could be priced (no token counts "
                          "and no cost estimates)")
    rng = np.random.default_rng(seed)
    costs = np.asarray(rows, dtype=float)
    idx = rng.integers(0, len(costs), size=(resamples, len(costs)))
    boot = costs[idx].mean(axis=1)  # resamples × strategies
    per_request = {s: _interval(costs[:, i].mean(), boot[:, i]) for i, s in enumerate(STRATEGIES)}
    totals = {s: float(costs[:, i].sum()) for i, s in enumerate(STRATEGIES)}
    saving = [_saving(costs[:, 0].sum(), costs[:, i].sum(), boot[:, 0], boot[:, i])
              for i in (1, 2)]
    est_q = {}
    if quality:
        q = np.asarray(quality, dtype=float)
        qi = rng.integers(0, len(q), size=(resamples, len(q)))
        qb = q[qi].mean(axis=1)
        est_q = {s: _interval(q[:, i].mean(), qb[:, i]) for i, s in enumerate(STRATEGIES)}
    feedback = _feedback(routed, rng, resamples)
    window = [c for c in by_request.values()]
    verdicts = {v: sum(1 for c in window if (c.verdict or "none") == v)
                for v in ("routed", "tie", "same", "served", "none")}
    judged = verdicts["routed"] + verdicts["served"] + verdicts["tie"] + verdicts["same"]
    win = None
    if judged:
        wins = verdicts["routed"] + 0.5 * (verdicts["tie"] + verdicts["same"])
        win = _wilson(wins, judged)
    return SavingsReport(
        since=since, until=until, default=default, best=best, requests=len(rows),
        unpriced=unpriced, shadow_requests=shadow_n, cost_per_request=per_request,
        total_cost=totals, savings_vs_default=saving[0], savings_vs_best=saving[1],
        estimated_quality=est_q, feedback=feedback, verdicts=verdicts, routed_win_rate=win,
        shadow_cost=float(sum(c.routed_cost + c.judge_cost for c in window)),
        share={m: n / len(rows) for m, n in sorted(share.items(), key=lambda kv: -kv[1])})


def _priced(r: RequestSummary, model: str, prices: Mapping[str, Prices]) -> float | None:
    """The request at ``model``'s prices: its own cost if that model answered it, else its
    tokens re-priced, else the decision's cost estimate for that model."""
    if model == r.chosen:
        return r.cost
    if r.prompt_tokens is not None and r.completion_tokens is not None and model in prices:
        return prices[model].cost(r.prompt_tokens, r.completion_tokens)
    for c in r.candidates:
        if c.model == model and c.estimated_cost is not None:
            return float(c.estimated_cost)
    return None


def _shadow_default(routed: list[RequestSummary]) -> str | None:
    served = {(r.explain or {}).get("shadow", {}).get("served") for r in routed}
    served.discard(None)
    return served.pop() if len(served) == 1 else None


def _best_estimated(routed: list[RequestSummary]) -> str:
    """The model whose mean estimated quality over the window's decisions is highest."""
    sums: dict[str, list[float]] = {}
    for r in routed:
        for c in r.candidates:
            if c.estimated_quality is not None:
                sums.setdefault(c.model, []).append(c.estimated_quality)
    if not sums:
        raise ConfigError("the decisions carry no quality estimates: name the best model with "
                          "--best MODEL")
    return max(sorted(sums), key=lambda m: float(np.mean(sums[m])))


def _interval(value: float, boot: np.ndarray) -> Interval:
    low, high = np.percentile(boot, [2.5, 97.5])
    return Interval(float(value), float(low), float(high))


def _saving(routed_total: float, base_total: float, routed_boot: np.ndarray,
            base_boot: np.ndarray) -> Interval:
    if base_total <= 0:
        return Interval(math.nan, math.nan, math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = 1 - routed_boot / base_boot
    boot = boot[np.isfinite(boot)]
    value = 1 - routed_total / base_total
    return _interval(value, boot) if len(boot) else Interval(value, value, value)


def _feedback(routed: list[RequestSummary], rng: np.random.Generator,
              resamples: int) -> dict[str, tuple[Interval, int]]:
    scores: dict[str, list[float]] = {}
    for r in routed:
        if r.feedback is not None and r.chosen is not None:
            scores.setdefault(r.chosen, []).append(float(r.feedback))
    out = {}
    for model, values in sorted(scores.items()):
        v = np.asarray(values)
        boot = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
        out[model] = (_interval(v.mean(), boot), len(v))
    return out


def _wilson(successes: float, n: int, z: float = 1.96) -> Interval:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))

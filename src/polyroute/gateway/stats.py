"""The numbers the dashboard shows, computed from the store's records of a time window.

Why from the records and not from the Prometheus counters: the records are the gateway's one
complete account (shared by every replica once the store is shared), they survive restarts, and
a test can check every number the page shows against them. The live state that is not in the
records — breaker states, spend against limits — is read from the running gateway.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from polyroute.errors import ConfigError
from polyroute.evaluation.traffic import BEST, Prices, savings_report
from polyroute.store import OK, RequestSummary


def window_stats(requests: Iterable[RequestSummary], *, since: float, until: float,
                 buckets: int, prices: Mapping[str, Prices]) -> dict[str, Any]:
    """Traffic, latency, fallbacks, cache, guards and the router's cost–quality position over
    the requests started in [since, until), with traffic split into ``buckets`` equal slots."""
    rows = [r for r in requests if since <= r.ts < until]
    width = (until - since) / buckets
    slots: list[Counter[str]] = [Counter() for _ in range(buckets)]
    profiles: Counter[str] = Counter()
    models: Counter[str] = Counter()
    status: Counter[str] = Counter()
    guards: Counter[str] = Counter()
    latencies: list[float] = []
    per_model_latency: dict[str, list[float]] = {}
    fallbacks = cache_hits = 0
    saved = spend = 0.0
    for r in rows:
        status[r.status] += 1
        spend += r.cost
        profiles[r.profile or "(backend named)"] += 1
        if r.chosen is not None:
            models[r.chosen] += 1
            slots[min(buckets - 1, int((r.ts - since) // width))][r.chosen] += 1
        fallbacks += r.fallbacks
        if r.saved > 0:
            cache_hits += 1
            saved += r.saved
        if r.guard and r.guard.get("action") not in (None, "allow"):
            guards[str(r.guard["action"])] += 1
        if r.status == OK and r.latency_ms is not None:
            latencies.append(r.latency_ms)
            if r.chosen is not None:
                per_model_latency.setdefault(r.chosen, []).append(r.latency_ms)
    total = len(rows)
    return {
        "since": since, "until": until, "requests": total,
        "status": dict(status),
        "spend": spend,
        "share_by_model": {m: n / total for m, n in models.most_common()} if total else {},
        "share_by_profile": {p: n / total for p, n in profiles.most_common()} if total else {},
        "traffic": {"bucket_s": width, "starts": [since + i * width for i in range(buckets)],
                    "models": sorted(models),
                    "counts": [[slot[m] for m in sorted(models)] for slot in slots]},
        "latency_ms": _percentiles(latencies),
        "latency_ms_by_model": {m: _percentiles(v) for m, v in sorted(per_model_latency.items())},
        "fallbacks": fallbacks,
        "cache": {"hits": cache_hits, "saved": saved,
                  "hit_rate": cache_hits / total if total else 0.0},
        "guards": dict(guards),
        "router": _position(rows, prices),
    }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "n": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "n": len(values)}


def _position(rows: list[RequestSummary], prices: Mapping[str, Prices]) -> dict[str, Any] | None:
    """The live router against always-the-best-model (by mean estimated quality), or None
    when the window has no routed request to say it from."""
    try:
        report = savings_report(rows, [], prices, default=_DEFAULT_IS_BEST, resamples=200)
    except ConfigError:
        return None
    routed, always = report.cost_per_request["routed"], report.cost_per_request["always-best"]
    q = report.estimated_quality
    return {"best": report.best, "requests": report.requests,
            "cost_per_request": routed.value, "best_cost_per_request": always.value,
            "estimated_quality": q["routed"].value if q else None,
            "best_estimated_quality": q["always-best"].value if q else None,
            "savings_vs_best": None if math.isnan(report.savings_vs_best.value)
            else report.savings_vs_best.value}


#: The dashboard compares with the best model only: it stands in for the default too.
_DEFAULT_IS_BEST = BEST

"""Honest routing evaluation: sweep preferences, score decisions on recorded outcomes, summarise."""

from polyroute.evaluation.bootstrap import aiq_of, paired_bootstrap
from polyroute.evaluation.hull import aiq, cost_to_reach, hull_quality_at, pareto_hull
from polyroute.evaluation.metrics import Reference, summarize
from polyroute.evaluation.runner import (
    DEFAULT_ROUTERS,
    cross_validate,
    embed_split,
    evaluate_split,
    leave_task_out_evaluation,
    score_estimates,
)
from polyroute.evaluation.sweep import DEFAULT_LAMBDAS, operating_points, simulate

__all__ = [
    "DEFAULT_LAMBDAS",
    "DEFAULT_ROUTERS",
    "Reference",
    "aiq",
    "aiq_of",
    "cost_to_reach",
    "cross_validate",
    "embed_split",
    "evaluate_split",
    "hull_quality_at",
    "leave_task_out_evaluation",
    "operating_points",
    "paired_bootstrap",
    "pareto_hull",
    "score_estimates",
    "simulate",
    "summarize",
]

"""Recorded outcomes: the table, its loaders and its splits."""

from polyroute.data.bundled import load_bundled
from polyroute.data.loaders import load_models, load_outcomes, save_long_jsonl
from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, ModelInfo, Outcomes, rule_cost
from polyroute.data.references import Choices, Reference, load_references
from polyroute.data.splits import kfold, leave_task_out, train_test_split

__all__ = [
    "Choices",
    "DEFAULT_OUTPUT_TOKENS",
    "ModelInfo",
    "Outcomes",
    "Reference",
    "kfold",
    "leave_task_out",
    "load_bundled",
    "load_models",
    "load_outcomes",
    "load_references",
    "rule_cost",
    "save_long_jsonl",
    "train_test_split",
]

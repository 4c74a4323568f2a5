"""Onboarding: add a model that has no recorded outcomes from a few graded calibration answers."""

from polyroute.onboarding.calibrate import (
    ADAPTIVE,
    IMPUTATION_METHODS,
    SELECTION_STRATEGIES,
    Onboarded,
    add_answers,
    choose_prompts,
    impute_quality,
    onboard,
    routing_value_of_tasks,
)

__all__ = [
    "ADAPTIVE",
    "IMPUTATION_METHODS",
    "Onboarded",
    "SELECTION_STRATEGIES",
    "add_answers",
    "choose_prompts",
    "impute_quality",
    "onboard",
    "routing_value_of_tasks",
]

"""Onboarding: add a model that has no recorded outcomes from a few graded calibration answers.

The maths is here (:mod:`~polyroute.onboarding.calibrate`: which prompts to ask, how the new
model's other cells are filled); ``polyroute onboard`` asks real backends
(:mod:`~polyroute.onboarding.collect`) and trains the router (:mod:`~polyroute.onboarding.run`).
"""

from polyroute.onboarding.calibrate import (
    ADAPTIVE,
    IMPUTATION_METHODS,
    SELECTION_STRATEGIES,
    SEQUENTIAL,
    IRTPrior,
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
    "IRTPrior",
    "Onboarded",
    "SELECTION_STRATEGIES",
    "SEQUENTIAL",
    "add_answers",
    "choose_prompts",
    "impute_quality",
    "onboard",
    "routing_value_of_tasks",
]

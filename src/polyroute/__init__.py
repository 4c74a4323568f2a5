"""polyroute: learn which LLM should answer each request, and serve that decision.

The public surface fits on one screen::

    outcomes = load_bundled()                      # or load_outcomes("my.jsonl", "models.json")
    pipe = Pipeline("knn").fit(outcomes)           # featurizer + router + cost model
    est = pipe.estimate(["What is 2 + 2?"])        # every model's quality and cost
    [d] = decisions(est, TradeoffPolicy(lam=0.5))  # ranked candidates for each prompt
    pipe.save("router/")                           # JSON + npz, loads without pickle
"""

from polyroute.data import (
    ModelInfo,
    Outcomes,
    kfold,
    leave_task_out,
    load_bundled,
    load_models,
    load_outcomes,
    train_test_split,
)
from polyroute.errors import (
    ConfigError,
    DataError,
    NotFittedError,
    PolicyError,
    PolyrouteError,
    RouterError,
)
from polyroute.pipeline import Pipeline
from polyroute.policies import (
    BudgetPolicy,
    Decision,
    FloorPolicy,
    Preference,
    TradeoffPolicy,
    calibrate_lambda,
    decisions,
    policy_for,
)
from polyroute.routers import Estimates, Router, available_routers, make_router

__version__ = "0.1.0"

__all__ = [
    "BudgetPolicy",
    "ConfigError",
    "DataError",
    "Decision",
    "Estimates",
    "FloorPolicy",
    "ModelInfo",
    "NotFittedError",
    "Outcomes",
    "Pipeline",
    "PolicyError",
    "PolyrouteError",
    "Preference",
    "Router",
    "RouterError",
    "TradeoffPolicy",
    "available_routers",
    "calibrate_lambda",
    "decisions",
    "kfold",
    "leave_task_out",
    "load_bundled",
    "load_models",
    "load_outcomes",
    "make_router",
    "policy_for",
    "train_test_split",
]

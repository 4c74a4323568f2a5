"""Hyper-parameters are checked once, at construction, against each router's declared constraints.

One mechanism in the base class (``Router._parameter_constraints``), declared by every registered
router: a bad value fails when the router is built (before any data is loaded or embedded), with
one message naming the router, the parameter, what is allowed and what was given.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from polyroute.errors import RouterError
from polyroute.routers import Router, available_routers, get_router_class, make_router
from polyroute.routers.knn import KNNRouter

ROUTERS = available_routers()


@pytest.mark.parametrize("name", ROUTERS)
def test_every_parameter_of_every_router_has_a_declared_constraint(name: str) -> None:
    cls = get_router_class(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert sorted(cls._parameter_constraints) == sorted(params)


@pytest.mark.parametrize("name", ROUTERS)
def test_defaults_satisfy_the_constraints(name: str) -> None:
    make_router(name)._validate_params()


@pytest.mark.parametrize(("name", "param", "value", "fragments"), [
    ("knn", "k", -5, ("integer", ">= 1", "None", "-5")),
    ("knn", "k", 0, (">= 1",)),
    ("knn", "k", "abc", ("integer", "'abc'")),
    ("knn", "k", 2.5, ("integer", "2.5")),
    ("knn", "k", True, ("integer", "True")),
    ("knn", "cv", 1, (">= 2", "1")),
    ("knn", "cv", 0, (">= 2",)),
    ("knn", "k_grid", [], ("k_grid", "non-empty")),
    ("knn", "k_grid", [5, 0], ("k_grid", ">= 1")),
    ("knn", "random_state", "seed", ("random_state", "'seed'")),
    ("linear", "alphas", [-1.0], ("alphas", "> 0")),
    ("mlp", "hidden", [0], ("hidden", ">= 1")),
    ("mlp", "max_iter", 0, ("max_iter", ">= 1")),
    ("mlp", "alpha", -1, ("alpha", ">= 0")),
    ("mf", "dim", 0, ("dim", ">= 1")),
    ("mf", "lr", 0, ("lr", "> 0")),
    ("mf", "dropout", 1.0, ("dropout", "[0, 1)")),
    ("mf", "validation", -0.1, ("validation",)),
    ("cluster", "n_clusters", 0, ("n_clusters", ">= 1")),
    ("cluster", "prior", -1, ("prior", ">= 0")),
    ("cluster", "prior", float("nan"), ("prior", "nan")),
    ("bandit", "ridge", 0, ("ridge", "> 0")),
    ("bandit", "exploration", "greedy", ("unknown exploration 'greedy'", "ucb", "thompson")),
    ("bandit", "prior_quality", 2, ("prior_quality", "[0, 1]")),
    ("irt", "prior_shrinkage", 1.5, ("prior_shrinkage", "[0, 1]")),
    ("irt", "hidden", -1, ("hidden", ">= 0")),
    ("ensemble", "cv", 1, ("cv", ">= 2")),
    ("ensemble", "stacker", "vote", ("unknown stacker 'vote'", "logistic")),
    ("ensemble", "base", ("knn", "nope"), ("unknown router 'nope'",)),
    ("ensemble", "base", ("knn", "knn"), ("twice",)),
    ("ensemble", "base_params", [1], ("base_params",)),
])
def test_a_bad_value_fails_at_construction_naming_the_parameter(name: str, param: str, value: Any,
                                                                 fragments) -> None:
    with pytest.raises(RouterError) as info:
        make_router(name, **{param: value})
    message = str(info.value)
    assert f"router {name!r}" in message and param in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(RouterError, match=r"k must be an integer >= 1 or None, got -5"):
        KNNRouter(k=-5)


@pytest.mark.parametrize(("name", "params"), [
    ("knn", {"k": None}),
    ("knn", {"k": 3, "k_grid": [2, 4], "cv": 2}),  # JSON lists stand for tuples
    ("linear", {"alphas": [1, 10]}),  # integers are numbers
    ("mlp", {"hidden": [8, 4], "alpha": 0}),
    ("mf", {"dropout": 0, "validation": 0}),
    ("ensemble", {"base": ["knn", "linear"], "base_params": {"knn": {"k": 3}}}),
    ("random", {"random_state": None}),
])
def test_good_values_pass(name: str, params: dict[str, Any]) -> None:
    assert make_router(name, **params).get_params().items() >= params.items()


def test_changed_attributes_are_checked_again_at_fit(two_cluster) -> None:
    router = make_router("knn")
    router.k = -1
    with pytest.raises(RouterError, match="k must be"):
        router.fit(two_cluster.outcomes, two_cluster.features)


def test_a_subclass_with_its_own_parameter_is_checked_once_built() -> None:
    class Wider(KNNRouter):
        _parameter_constraints = {**KNNRouter._parameter_constraints,
                                  "extra": KNNRouter._parameter_constraints["cv"]}

        def __init__(self, k: int | None = None, extra: int = 3) -> None:
            super().__init__(k=k)
            self.extra = extra

    assert Wider(k=2).extra == 3  # the parent's check does not run before `extra` exists
    with pytest.raises(RouterError, match="extra"):
        Wider(extra=0)


def test_a_saved_router_still_loads(two_cluster, tmp_path: Path) -> None:
    router = make_router("knn", k=3, k_grid=(2, 4)).fit(two_cluster.outcomes,
                                                        two_cluster.features)
    router.save(tmp_path)
    loaded = Router.load(tmp_path)
    assert loaded.get_params() == router.get_params()

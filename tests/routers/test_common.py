"""One set of checks run over every router in the registry, in scikit-learn's manner.

Routers added later are covered automatically: the parametrization reads ``available_routers()``.
A router that is slow with its default hyper-parameters gets smaller ones from ``FAST_PARAMS``
(constructor defaults themselves are still checked by the constructor test).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polyroute.errors import NotFittedError, RouterError
from polyroute.routers import Estimates, Router, available_routers, get_router_class, make_router
from polyroute.routers.base import ARRAYS_FILE, STATE_FILE

ROUTERS = available_routers()

# Tiny iteration budgets are the point here; convergence is the learned-router tests' business.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Small hyper-parameters that keep fitting on 40 prompts quick; other routers use defaults.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "mf": {"epochs": 30, "dim": 8},
    "mlp": {"hidden": (16,), "max_iter": 60},
    "cluster": {"n_clusters": 4},
}


def build(name: str, **params: Any) -> Router:
    return make_router(name, **{**FAST_PARAMS.get(name, {}), **params})


def learned_attributes(router: Router) -> list[str]:
    return [k for k in vars(router) if k.endswith("_") and not k.startswith("_")]


@pytest.fixture
def fitted(request, two_cluster):
    """(router, world) with the router fitted on the two-cluster world."""
    router = build(request.param)
    assert router.fit(two_cluster.outcomes, two_cluster.features) is router
    return router, two_cluster


def _fitted_params():
    return pytest.mark.parametrize("fitted", ROUTERS, indirect=True)


# -- registry ------------------------------------------------------------------------------------
def test_registry_lists_the_built_in_routers() -> None:
    assert ROUTERS == sorted(ROUTERS)
    assert {"best-single", "cheapest", "cluster", "knn", "linear", "mf", "mlp", "oracle",
            "random"} <= set(ROUTERS)
    servable = available_routers(include_evaluation_only=False)
    assert "oracle" not in servable
    assert set(servable) == {n for n in ROUTERS if not get_router_class(n).evaluation_only}


def test_unknown_router_name_lists_the_choices() -> None:
    with pytest.raises(RouterError) as info:
        make_router("no-such-router")
    message = str(info.value)
    assert "'no-such-router'" in message
    for name in ROUTERS:
        assert name in message


@pytest.mark.parametrize("name", ROUTERS)
def test_unknown_parameter_is_a_router_error(name: str) -> None:
    with pytest.raises(RouterError, match=name):
        make_router(name, no_such_parameter=1)


# -- construction --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ROUTERS)
def test_constructor_only_stores_parameters(name: str) -> None:
    cls = get_router_class(name)
    router = make_router(name)
    assert type(router) is cls and router.name == name
    assert learned_attributes(router) == []
    params = router.get_params()
    assert type(router)(**params).get_params() == params
    json.dumps(params)  # parameters are plain values (they are saved as JSON)
    assert repr(router).startswith(f"{cls.__name__}(")
    if params:
        assert f"{next(iter(params))}=" in repr(router)
    if cls.learns_online:
        assert callable(getattr(cls, "learn_one", None)), "learns_online routers need learn_one"


@pytest.mark.parametrize("name", ROUTERS)
def test_estimate_before_fit_names_the_class(name: str) -> None:
    router = build(name)
    with pytest.raises(NotFittedError, match=type(router).__name__):
        router.estimate(np.zeros((2, 8), dtype=np.float32))


@pytest.mark.parametrize("name", ROUTERS)
def test_save_before_fit_is_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(RouterError):
        build(name).save(tmp_path)


# -- fit / estimate ------------------------------------------------------------------------------
@_fitted_params()
def test_fit_and_estimate_shapes_and_range(fitted) -> None:
    router, world = fitted
    o = world.outcomes
    assert router.models_ == list(o.model_names)
    assert router.n_features_in_ == world.features.shape[1]
    est = router.estimate(world.features)
    assert isinstance(est, Estimates)
    assert est.models == o.model_names
    assert est.quality.shape == (o.n_prompts, len(o.models))
    assert np.all(np.isfinite(est.quality))
    assert est.quality.min() >= 0.0 and est.quality.max() <= 1.0
    if est.uncertainty is not None:
        assert est.uncertainty.shape == est.quality.shape
        assert np.all(np.isfinite(est.uncertainty)) and est.uncertainty.min() >= 0


@_fitted_params()
def test_estimate_any_number_of_new_rows(fitted) -> None:
    router, world = fitted
    if router.evaluation_only:
        # The oracle reads the truth of the prompts it was fitted on, and refuses anything else.
        with pytest.raises(RouterError, match="only the prompts it was fitted on"):
            router.estimate(world.features[:3])
        return
    for rows in (1, 3):
        est = router.estimate(world.features[:rows] + 0.01)
        assert est.quality.shape == (rows, 3)
        assert np.all((est.quality >= 0) & (est.quality <= 1))


@pytest.mark.parametrize("name", ROUTERS)
def test_fit_tolerates_unknown_cells(name: str, two_cluster_factory) -> None:
    world = two_cluster_factory(20, missing=0.3)
    assert np.isnan(world.outcomes.quality).sum() > 5
    est = build(name).fit(world.outcomes, world.features).estimate(world.features)
    assert np.all(np.isfinite(est.quality))
    assert est.quality.min() >= 0.0 and est.quality.max() <= 1.0


@pytest.mark.parametrize("name", ROUTERS)
def test_same_seed_same_estimates(name: str, two_cluster) -> None:
    x, o = two_cluster.features, two_cluster.outcomes
    a = build(name).fit(o, x)
    b = build(name).fit(o, x)
    np.testing.assert_array_equal(a.estimate(x).quality, b.estimate(x).quality)
    np.testing.assert_array_equal(a.estimate(x).quality, a.estimate(x).quality)


@_fitted_params()
def test_wrong_feature_width_is_a_router_error(fitted) -> None:
    router, world = fitted
    n, d = world.features.shape
    with pytest.raises(RouterError, match=rf"\(n, {d}\)"):
        router.estimate(np.zeros((n, d + 1), dtype=np.float32))
    with pytest.raises(RouterError):
        router.estimate(np.zeros(d, dtype=np.float32))


@pytest.mark.parametrize("name", ROUTERS)
def test_fit_validates_its_input(name: str, two_cluster) -> None:
    o, x = two_cluster.outcomes, two_cluster.features
    with pytest.raises(RouterError, match="features have shape"):
        build(name).fit(o, x[:-1])
    blank = type(o)(o.prompt_ids, o.prompts, o.tasks, o.models, np.full(o.quality.shape, np.nan),
                    o.cost)
    with pytest.raises(RouterError, match="no known quality"):
        build(name).fit(blank, x)


# -- persistence ---------------------------------------------------------------------------------
@_fitted_params()
def test_save_load_round_trip(fitted, tmp_path: Path) -> None:
    router, world = fitted
    if router.evaluation_only:
        with pytest.raises(RouterError, match="cannot be saved"):
            router.save(tmp_path)
        assert not (tmp_path / STATE_FILE).exists()
        return
    router.save(tmp_path / "saved")
    state = json.loads((tmp_path / "saved" / STATE_FILE).read_text())
    assert state["router"] == router.name
    np.load(tmp_path / "saved" / ARRAYS_FILE, allow_pickle=False)  # no pickled objects
    loaded = Router.load(tmp_path / "saved")
    assert type(loaded) is type(router)
    assert loaded.get_params() == router.get_params()
    assert sorted(learned_attributes(loaded)) == sorted(learned_attributes(router))
    probe = np.concatenate([world.features, world.features[:3] * 0.5 + 0.2])
    np.testing.assert_array_equal(loaded.estimate(probe).quality, router.estimate(probe).quality)
    # A loaded router saves again to the same state.
    loaded.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / STATE_FILE).read_text()) == state


def test_load_rejects_a_directory_without_a_router(tmp_path: Path) -> None:
    with pytest.raises(RouterError, match="not a saved polyroute router"):
        Router.load(tmp_path)


@pytest.mark.parametrize("state", [
    pytest.param("{broken", id="not-json"),
    pytest.param("{}", id="no-keys"),
    pytest.param('{"router": "knn"}', id="no-params"),
    pytest.param('{"router": "no-such-router", "params": {}, "learned": {}}',
                 id="unknown-router"),
])
def test_load_rejects_a_corrupt_state_file(tmp_path: Path, state: str) -> None:
    (tmp_path / STATE_FILE).write_text(state)
    np.savez(tmp_path / ARRAYS_FILE)
    with pytest.raises(RouterError):
        Router.load(tmp_path)

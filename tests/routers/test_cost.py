"""The cost model prices estimates by model name, never by column position."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.errors import DataError
from polyroute.pipeline import Pipeline
from polyroute.routers import CostModel


def test_predict_returns_the_named_columns_in_the_asked_order(two_cluster) -> None:
    model = CostModel.fit(two_cluster.outcomes)
    texts = list(two_cluster.outcomes.prompts[:3])
    full = model.predict(texts)
    np.testing.assert_array_equal(model.predict(texts, ["C", "A"]), full[:, [2, 0]])
    with pytest.raises(DataError, match="no price for Z"):
        model.predict(texts, ["A", "Z"])


def test_a_pipeline_prices_router_columns_by_name(two_cluster) -> None:
    o = two_cluster.outcomes
    pipe = Pipeline("best-single", featurizer="tfidf", cache=False).fit(
        o, features=two_cluster.features)
    expected = pipe.estimate(o.prompts[:4], features=two_cluster.features[:4]).cost
    fitted = pipe.cost_model_
    order = [2, 0, 1]  # the same prices, listed in another order (e.g. a hand-edited file)
    pipe.cost_model_ = CostModel(tuple(fitted.models[j] for j in order),
                                 tuple(fitted.output_cost[j] for j in order), fitted.cost_scale)
    est = pipe.estimate(o.prompts[:4], features=two_cluster.features[:4])
    assert est.models == ("A", "B", "C")
    np.testing.assert_array_equal(est.cost, expected)

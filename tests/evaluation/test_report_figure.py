"""curves.png explains itself: what the grey band and the faint dots are, a readable cheap end,
single-model labels clear of each other and of the curves, an x-axis that ends near the dearest
model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.text import Annotation, Text

from polyroute.evaluation.hull import pareto_hull
from polyroute.evaluation.report import curves_figure

#: Mean cost ($ per prompt) and quality of the nine bundled models on a held-out 20 %: six models
#: share one price, three another, and the curves all start at the cheapest.
SINGLES = {
    "codegemma-7b": (6.6e-05, 0.299), "gemma-2-9b-it": (3.3e-05, 0.537),
    "llama-3.1-8b-instruct": (6.6e-05, 0.573),
    "llama-3.1-nemotron-51b-instruct": (2.97e-04, 0.622),
    "llama-3.3-nemotron-super-49b-v1": (2.97e-04, 0.589),
    "llama3-chatqa-1.5-70b": (2.97e-04, 0.189),
    "llama3-chatqa-1.5-8b": (6.6e-05, 0.172), "mistral-7b-instruct-v0.3": (6.6e-05, 0.380),
    "qwen2.5-7b-instruct": (6.6e-05, 0.526),
}


def router_points(top: float, knee: float, seed: int) -> list[list[float]]:
    """61 operating points rising steeply from the cheapest model, then flattening."""
    rng = np.random.default_rng(seed)
    cost = np.geomspace(3.3e-05, 2.5e-04, 61)
    quality = 0.537 + (top - 0.537) * (1 - np.exp(-(cost - 3.3e-05) / knee))
    return np.stack([cost, quality - rng.uniform(0, 0.01, 61)], axis=1).tolist()


@pytest.fixture
def result():
    singles = {n: {"cost": c, "quality": q} for n, (c, q) in SINGLES.items()}
    zero = [[c, q] for c, q in SINGLES.values()]
    oracle = [[3.3e-05, 0.537], [4e-05, 0.74], [5.8e-05, 0.80]]
    routers = {name: {"aiq": aiq, "points": router_points(top, knee, k)}
               for k, (name, aiq, top, knee) in enumerate([("ensemble", 0.641, 0.656, 3e-05),
                                                           ("knn", 0.634, 0.649, 2.5e-05),
                                                           ("mlp", 0.620, 0.640, 5e-05)])}
    return {"reference": {"c_min": 3.3e-05, "c_max": 2.97e-04},
            "zero_router": {"aiq": 0.592, "points": zero, "single_models": singles},
            "oracle": {"aiq": 0.792, "points": oracle}, "routers": routers}


@pytest.fixture
def drawn(result):
    fig = curves_figure(result, "bundled-like")
    fig.canvas.draw()
    yield fig, fig.axes[0], fig.canvas.get_renderer()
    import matplotlib.pyplot as plt

    plt.close(fig)


def labels(ax) -> list[Annotation]:
    return [t for t in ax.texts if isinstance(t, Annotation) and t.get_text() in SINGLES]


def text_box(t: Annotation, renderer):
    """The label's own box, without its leader line."""
    return Text.get_window_extent(t, renderer)


def test_the_legend_says_what_the_band_the_dots_and_the_lines_are(drawn) -> None:
    _, ax, _ = drawn
    texts = " | ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "AIQ budget range" in texts
    assert "operating point" in texts and "λ" in texts
    assert "single model" in texts
    for name in ("ensemble", "knn", "mlp", "zero router", "oracle"):
        assert name in texts


def test_the_cheap_end_is_spread_out_and_the_axis_ends_near_the_dearest_model(drawn) -> None:
    _, ax, _ = drawn
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    dearest = max(c for c, _ in SINGLES.values()) * 1000  # plotted in $ per 1,000 prompts
    cheapest = min(c for c, _ in SINGLES.values()) * 1000
    assert dearest < right <= 1.3 * dearest
    assert cheapest / 1.3 <= left < cheapest


def test_every_single_model_is_labelled_once_inside_the_axes(drawn) -> None:
    _, ax, renderer = drawn
    assert sorted(t.get_text() for t in labels(ax)) == sorted(SINGLES)
    frame = ax.get_window_extent(renderer)
    for t in labels(ax):
        box = text_box(t, renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, t.get_text()
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1, t.get_text()


def test_labels_overlap_neither_each_other_nor_the_curves(drawn) -> None:
    _, ax, renderer = drawn
    boxes = {t.get_text(): text_box(t, renderer) for t in labels(ax)}
    for (a, ba), (b, bb) in itertools.combinations(boxes.items(), 2):
        assert not ba.overlaps(bb), (a, b)
    curves = [line for line in ax.get_lines() if not line.get_label().startswith("_")
              and len(line.get_xdata()) > 1]
    assert len(curves) == 5  # zero router, oracle, three routers
    for line in curves:
        path = line.get_transform().transform_path(line.get_path())
        for name, box in boxes.items():
            assert not path.intersects_bbox(box, filled=False), (name, line.get_label())


def test_hull_lines_follow_the_mixing_segments_on_the_log_axis(drawn, result) -> None:
    """Mixing two operating points costs and scores their weighted mean: a straight segment in
    linear cost, a curve on a log axis. The drawn line must follow the true segment."""
    _, ax, _ = drawn
    [line] = [x for x in ax.get_lines() if x.get_label().startswith("knn")]
    hull = pareto_hull(np.asarray(result["routers"]["knn"]["points"]))
    xs, ys = np.asarray(line.get_xdata()) / 1000, np.asarray(line.get_ydata())
    assert len(xs) > 3 * len(hull)
    np.testing.assert_allclose(ys, np.interp(xs, hull[:, 0], hull[:, 1]), atol=1e-9)

"""What a person reads after an evaluation: metrics.json, curves.png and the leaderboard."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from polyroute.evaluation import evaluate_split
from polyroute.evaluation.report import leaderboard, per_task_table, plot_curves, write_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def result(two_cluster_split):
    train, test = two_cluster_split
    return evaluate_split(train.outcomes, test.outcomes, ["best-single", "knn"], "tfidf",
                          features=(train.features, test.features))


def render(renderable) -> str:
    buffer = io.StringIO()
    Console(width=200, file=buffer, color_system=None).print(renderable)
    return buffer.getvalue()


def test_metrics_json_has_the_documented_shape(result, tmp_path: Path) -> None:
    path = write_metrics(result, tmp_path / "run")
    assert path == tmp_path / "run" / "metrics.json"
    metrics = json.loads(path.read_text())
    for ref in ("zero_router", "oracle"):
        assert isinstance(metrics[ref]["aiq"], float)
        assert isinstance(metrics[ref]["points"], list)
    knn = metrics["routers"]["knn"]
    assert {"aiq", "best_quality", "cpt95", "points"} <= set(knn)
    assert isinstance(knn["aiq"], float) and 0 <= knn["aiq"] <= 1
    assert all(len(p) == 2 for p in knn["points"])
    assert set(metrics["routers"]) == {"best-single", "knn"}
    assert metrics["zero_router"]["single_models"]["A"]["quality"] == pytest.approx(0.55)


def test_curves_png_is_written(result, tmp_path: Path) -> None:
    path = plot_curves(result, tmp_path / "plots" / "curves.png", "two clusters")
    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000  # a real picture, not an empty canvas


def test_leaderboard_lists_references_and_routers_best_first(result) -> None:
    text = render(leaderboard(result, "my title"))
    assert "my title" in text
    for name in ("oracle", "zero router", "knn", "best-single"):
        assert name in text
    assert text.index("knn") < text.index("best-single")  # higher AIQ first
    assert f"{result['routers']['knn']['aiq']:.4f}" in text


def test_per_task_table(result) -> None:
    text = render(per_task_table(result["per_task"]))
    assert "math" in text and "poetry" in text and "knn" in text


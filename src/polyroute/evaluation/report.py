"""What a person reads after an evaluation: a leaderboard, ``metrics.json`` and ``curves.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from polyroute.evaluation.metrics import CPT_LEVELS, cheapest_single, cpt_key

#: Plot costs in dollars per this many prompts, so the axis reads in human numbers.
COST_UNIT = 1000


def write_metrics(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(result, indent=1, default=_json_default))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def cheapest_alone(result: dict[str, Any]) -> tuple[str | None, float] | None:
    """(name, quality share of the best single model) of the cheapest single model, read off the
    zero router's points (pooled over splits for cross-validation); None without points."""
    points = np.asarray(result["zero_router"].get("points") or [], dtype=float)
    if points.ndim != 2 or len(points) == 0:
        return None
    best = float(np.nanmax(points[:, 1]))
    if not best > 0:
        return None
    i = cheapest_single(points)
    names = list(result["zero_router"].get("single_models") or {})
    return (names[i] if len(names) == len(points) else None), float(points[i, 1]) / best


def leaderboard(result: dict[str, Any], title: str = "polyroute evaluation"):
    """A rich Table of every router and the two reference lines, best AIQ first.

    A CPT level marked ``*`` is reached by the cheapest single model alone: every router's sweep
    ends at that model, so the column shows one number for all and does not rank them.
    """
    from rich.table import Table

    has_std = "aiq_std" in result["oracle"]
    rows = [("oracle", result["oracle"]), ("zero router", result["zero_router"])]
    rows += sorted(result["routers"].items(), key=lambda kv: -kv[1]["aiq"])
    levels = [lv for lv in CPT_LEVELS if any(cpt_key(lv) in r for _, r in rows)]
    cheapest = cheapest_alone(result)
    by_cheapest = {lv for lv in levels if cheapest is not None and lv <= cheapest[1] + 1e-12}
    caption = None
    if by_cheapest:
        name, share = cheapest  # type: ignore[misc]
        who = f"{name}, " if name else ""
        caption = (f"* reached by the cheapest single model alone ({who}{100 * share:.0f} % of "
                   f"the best single model's quality): the same for every router")
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("router")
    table.add_column("AIQ", justify="right")
    if has_std:
        table.add_column("± std", justify="right")
    table.add_column("gain share", justify="right")
    table.add_column("best quality", justify="right")
    for lv in levels:
        table.add_column(f"CPT{round(lv * 100)}" + ("*" if lv in by_cheapest else ""),
                         justify="right", style="dim" if lv in by_cheapest else None)
    table.add_column("fit s", justify="right")
    for name, r in rows:
        style = "dim" if name in ("oracle", "zero router") else None
        cells = [name, _fmt(r["aiq"], ".4f")]
        if has_std:
            cells.append(_fmt(r.get("aiq_std"), ".4f"))
        share = r.get("oracle_gain_share")
        cells += [_fmt(None if share is None else 100 * share, ".1f") + ("%" if share is not None
                                                                          else ""),
                  _fmt(r.get("best_quality"))]
        cells += [_fmt(r.get(cpt_key(lv)), ".2f") for lv in levels]
        cells.append(_fmt(r.get("fit_seconds"), ".1f"))
        table.add_row(*cells, style=style)
    return table


def per_task_table(per_task: dict[str, dict[str, float]]):
    """AIQ per task (rows) and router (columns)."""
    from rich.table import Table

    names = [k for k in next(iter(per_task.values())) if k != "n"]
    table = Table(title="AIQ per task (test prompts of each task)", title_justify="left")
    table.add_column("task")
    table.add_column("n", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for task, row in per_task.items():
        best = max(v for k, v in row.items() if k not in ("n", "oracle"))
        table.add_row(task, str(row["n"]), *[
            (f"[bold]{row[n]:.3f}[/bold]" if row[n] == best and n != "oracle" else f"{row[n]:.3f}")
            for n in names])
    return table


def plot_curves(result: dict[str, Any], path: Path, title: str = "") -> Path:
    """Write :func:`curves_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = curves_figure(result, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def curves_figure(result: dict[str, Any], title: str = ""):
    """Cost–quality hulls of every router, the oracle and the single models as labelled dots.

    Made to be read without the docs: the legend names the grey band (the AIQ budget range) and
    the faint dots (one operating point per λ). Costs use a log axis when all are positive:
    most operating points sit within a few times the cheapest model's cost, which a linear axis
    squeezes into its left edge. The axis ends just past the dearest model. Hull segments are
    drawn densely, so on the log axis they still follow the straight mixing line in linear cost.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    from polyroute.evaluation.hull import pareto_hull

    singles = result["zero_router"].get("single_models") or {}
    zero = pareto_hull(np.asarray(result["zero_router"]["points"]))
    oracle = pareto_hull(np.asarray(result["oracle"]["points"]))
    ranked = sorted(result["routers"].items(), key=lambda kv: -kv[1]["aiq"])
    all_costs = np.concatenate([np.asarray(result["zero_router"]["points"], float)[:, 0],
                                np.asarray(result["oracle"]["points"], float)[:, 0],
                                *[np.asarray(r["points"], float)[:, 0] for _, r in ranked]])
    all_costs = all_costs[np.isfinite(all_costs)] * COST_UNIT
    log = bool(len(all_costs)) and float(all_costs.min()) > 0

    fig, ax = plt.subplots(figsize=(11, 6), dpi=120)
    ref = result.get("reference")
    handles: list[Any] = []
    if ref:
        ax.axvspan(ref["c_min"] * COST_UNIT, ref["c_max"] * COST_UNIT, color="0.93", zorder=0)
        handles.append(Patch(color="0.93", label="AIQ budget range: cheapest to dearest "
                                                 "single model's cost"))
    for s in singles.values():
        ax.scatter(s["cost"] * COST_UNIT, s["quality"], color="black", s=18, zorder=4)
    if singles:
        handles.append(Line2D([], [], ls="", marker="o", color="black", markersize=4,
                              label="single model (every prompt to it)"))
    handles.append(Line2D([], [], ls="", marker="o", color="0.3", alpha=0.35, markersize=3,
                          label="operating points: one per trade-off weight λ"))
    curves = [ax.plot(*_dense(zero, log), "--", color="0.5", lw=1.2,
                      label=f"zero router (AIQ {result['zero_router']['aiq']:.3f})")[0],
              ax.plot(*_dense(oracle, log), ":", color="black", lw=1.2,
                      label=f"oracle (AIQ {result['oracle']['aiq']:.3f})")[0]]
    cmap = plt.get_cmap("tab10")
    faint = []
    for k, (name, r) in enumerate(ranked):
        pts = np.asarray(r["points"], dtype=float)
        color = cmap(k % 10)
        curves.append(ax.plot(*_dense(pareto_hull(pts), log), "-", color=color, lw=1.8,
                              label=f"{name} (AIQ {r['aiq']:.3f})")[0])
        ax.scatter(pts[:, 0] * COST_UNIT, pts[:, 1], color=color, s=5, alpha=0.35, zorder=2)
        faint.append(pts * [COST_UNIT, 1])
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(_dollars))
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_dollars))
    if len(all_costs):
        lo, hi = float(all_costs.min()), float(all_costs.max())
        if log:
            ax.set_xlim(lo / 1.15, hi * 1.15)
        else:
            ax.set_xlim(0, hi * 1.08)
    scale = "log scale" if log else "linear scale"
    ax.set_xlabel(f"mean cost, $ per {COST_UNIT:,} prompts ({scale})")
    ax.set_ylabel("mean quality")
    ax.set_title(title or "Cost–quality curves")
    ax.grid(alpha=0.3, which="both" if log else "major")
    handles.append(Line2D([], [], color="0.3", lw=1.2, label="line: upper hull of a router's "
                                                           "points\n(what mixing them delivers)"))
    ax.legend(handles=curves + handles, fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    _place_labels(ax, fig, singles, curves, faint)
    return fig


def _dense(hull: np.ndarray, log: bool, per_segment: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """The hull's (cost × COST_UNIT, quality) with points added along each segment, spaced evenly
    on the axis drawn, so a straight mixing segment in linear cost keeps its true shape."""
    if len(hull) < 2:
        return hull[:, 0] * COST_UNIT, hull[:, 1]
    xs = []
    for (x1, _), (x2, _) in zip(hull[:-1], hull[1:], strict=True):
        seg = np.geomspace(x1, x2, per_segment) if log else np.linspace(x1, x2, per_segment)
        xs.append(seg[:-1])
    x = np.append(np.concatenate(xs), hull[-1, 0])
    return x * COST_UNIT, np.interp(x, hull[:, 0], hull[:, 1])


def _dollars(x: float, _pos: Any = None) -> str:
    return f"{x:.3g}"


def _minor_dollars(x: float, _pos: Any = None) -> str:
    """Label a few minor ticks (2, 3 and 5 times a power of ten): a short log axis needs them."""
    lead = round(x / 10 ** np.floor(np.log10(x)), 6)
    return f"{x:.3g}" if lead in (2.0, 3.0, 5.0) else ""


def _count_in(box: Any, px: np.ndarray) -> int:
    """How many display points lie inside a bounding box."""
    return int(np.sum((px[:, 0] >= box.x0) & (px[:, 0] <= box.x1)
                      & (px[:, 1] >= box.y0) & (px[:, 1] <= box.y1)))


#: Where a label may go relative to its dot, in points: right, left, then further out up and down.
_OFFSETS = [(dx, dy) for dy in (0, -9, 9, -18, 18, -27, 27, -36, 36, -48, 48, -60, 60, -75, 75)
            for dx in (6, -6, 30, -30, 60, -60)]


def _place_labels(ax, fig, singles: dict[str, dict[str, float]], curves: list, faint: list) -> None:
    """Label each single model where its text crosses no curve, no other label and no dot.

    A small greedy search: for each model (highest quality first) try the offsets in
    :data:`_OFFSETS`, stop at a label beside its dot that touches nothing, else keep the one
    touching least (leaving the axes is worst, a moved label costs a little). A moved label gets
    a thin leader line to its dot, which may not cross a curve either.
    """
    from matplotlib.path import Path as MPath
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    lines = [c.get_transform().transform_path(c.get_path()) for c in curves
             if len(c.get_xdata()) > 1]
    dots = ax.transData.transform(np.array([[s["cost"] * COST_UNIT, s["quality"]]
                                            for s in singles.values()]).reshape(-1, 2))
    faint_px = ax.transData.transform(np.concatenate(faint)) if faint else np.zeros((0, 2))
    placed: list[Any] = []
    order = sorted(singles.items(), key=lambda kv: -kv[1]["quality"])
    for name, s in order:
        xy = (s["cost"] * COST_UNIT, s["quality"])
        best = None
        for dx, dy in _OFFSETS:
            far = abs(dx) > 6 or abs(dy) > 9
            text = ax.annotate(
                name, xy, xytext=(dx, dy), textcoords="offset points", fontsize=7,
                color="0.2", ha="left" if dx > 0 else "right", va="center", zorder=5,
                arrowprops=dict(arrowstyle="-", color="0.6", lw=0.6, shrinkA=0, shrinkB=2)
                if far else None)
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer).padded(1.5)  # without the leader
            inside = (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
                      and box.y1 <= frame.y1)
            cost = 0.0 if inside else 1000.0
            cost += 100.0 * sum(path.intersects_bbox(box, filled=False) for path in lines)
            cost += 100.0 * sum(box.overlaps(other) for other in placed)
            cost += 10.0 * _count_in(box, dots)
            cost += 0.2 * _count_in(box, faint_px) + (1 if far else 0)
            if far and text.arrow_patch is not None:  # the leader line may not cross a curve
                start = ax.transData.transform(xy)
                end = np.array([box.x0 if dx > 0 else box.x1, (box.y0 + box.y1) / 2])
                # from just outside the dot: curves that end at the dot do not count
                start = start + 5.0 * (end - start) / max(float(np.hypot(*(end - start))), 1e-9)
                leader = MPath([start, end])
                cost += 50.0 * sum(leader.intersects_path(path) for path in lines)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        assert best is not None
        placed.append(best[2])

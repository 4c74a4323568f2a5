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
    """Cost–quality hulls of every router, the oracle and the single models as labelled dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from polyroute.evaluation.hull import pareto_hull

    fig, ax = plt.subplots(figsize=(11, 6), dpi=120)
    singles = result["zero_router"].get("single_models") or {}
    for name, s in singles.items():
        ax.scatter(s["cost"] * COST_UNIT, s["quality"], color="black", s=18, zorder=3)
        ax.annotate(name, (s["cost"] * COST_UNIT, s["quality"]), fontsize=7,
                    xytext=(4, -3), textcoords="offset points", color="0.25")
    zero = pareto_hull(np.asarray(result["zero_router"]["points"]))
    ax.plot(zero[:, 0] * COST_UNIT, zero[:, 1], "--", color="0.5", lw=1.2,
            label=f"zero router (AIQ {result['zero_router']['aiq']:.3f})")
    oracle = pareto_hull(np.asarray(result["oracle"]["points"]))
    ax.plot(oracle[:, 0] * COST_UNIT, oracle[:, 1], ":", color="black", lw=1.2,
            label=f"oracle (AIQ {result['oracle']['aiq']:.3f})")
    cmap = plt.get_cmap("tab10")
    ranked = sorted(result["routers"].items(), key=lambda kv: -kv[1]["aiq"])
    for k, (name, r) in enumerate(ranked):
        pts = np.asarray(r["points"])
        hull = pareto_hull(pts)
        color = cmap(k % 10)
        ax.plot(hull[:, 0] * COST_UNIT, hull[:, 1], "-", color=color, lw=1.8,
                label=f"{name} (AIQ {r['aiq']:.3f})")
        ax.scatter(pts[:, 0] * COST_UNIT, pts[:, 1], color=color, s=5, alpha=0.35)
    ref = result.get("reference")
    if ref:
        ax.axvspan(ref["c_min"] * COST_UNIT, ref["c_max"] * COST_UNIT, color="0.95", zorder=0)
    right = max([s["cost"] for s in singles.values()] + [float(np.max(zero[:, 0]))])
    ax.set_xlim(0, right * COST_UNIT * 1.35)  # room for the single models' labels
    ax.set_xlabel(f"mean cost, $ per {COST_UNIT:,} prompts")
    ax.set_ylabel("mean quality")
    ax.set_title(title or "Cost–quality curves (upper hull of each router's operating points)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

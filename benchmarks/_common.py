"""Shared by the benchmark scripts: where the data is and how results are written."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data" / "llmrouter-bench"


def load_benchmark_data():
    """The llmrouter-bench data from ../shared/data (as the brief asks), else the bundled copy."""
    from polyroute.data import load_bundled, load_outcomes

    if (SHARED_DATA / "prompts.jsonl").is_file():
        return load_outcomes(SHARED_DATA / "prompts.jsonl", SHARED_DATA / "models.json")
    return load_bundled()


def machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        load = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count(), "load_average_1min_at_start": load, "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=1))
    return path


def fmt(value: float | None, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)

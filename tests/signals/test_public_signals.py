"""The signals package's public surface: sorted, complete, and light to import."""

from __future__ import annotations

import subprocess
import sys
import types

import polyroute.signals as signals


def test_all_is_sorted_and_complete() -> None:
    assert signals.__all__ == sorted(signals.__all__)
    public = {n for n, v in vars(signals).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(signals.__all__)


def test_import_does_no_heavy_work() -> None:
    code = ("import sys, polyroute.signals; print(sorted({'sklearn', 'torch', 'starlette'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

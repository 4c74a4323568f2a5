"""The onboarding package's public surface: sorted, complete, and light to import."""

from __future__ import annotations

import subprocess
import sys
import types

import polyroute.onboarding as onboarding


def test_all_is_sorted_and_complete() -> None:
    assert onboarding.__all__ == sorted(onboarding.__all__)
    # Submodules (calibrate, and collect/run once the CLI imported them) are not names of it.
    public = {n for n, v in vars(onboarding).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(onboarding.__all__)


def test_import_does_no_heavy_work() -> None:
    code = ("import sys, polyroute.onboarding; print(sorted({'sklearn', 'torch'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

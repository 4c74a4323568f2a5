"""The public surface: ``polyroute.__all__`` is sorted, complete and importable."""

from __future__ import annotations

import inspect
import subprocess
import sys

import polyroute


def test_all_is_sorted_and_unique() -> None:
    assert polyroute.__all__ == sorted(polyroute.__all__)
    assert len(set(polyroute.__all__)) == len(polyroute.__all__)


def test_every_name_in_all_is_importable() -> None:
    for name in polyroute.__all__:
        assert getattr(polyroute, name, None) is not None, name
    namespace: dict = {}
    exec("from polyroute import *", namespace)  # noqa: S102 - the point of the test
    assert set(polyroute.__all__) <= set(namespace)


def test_every_public_non_module_name_is_in_all() -> None:
    public = {name for name, value in vars(polyroute).items()
              if not name.startswith("_") and not inspect.ismodule(value)}
    assert public == set(polyroute.__all__)


def test_errors_share_one_base() -> None:
    errors = [getattr(polyroute, n) for n in polyroute.__all__ if n.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, polyroute.PolyrouteError)
    assert issubclass(polyroute.NotFittedError, polyroute.RouterError)


def test_version() -> None:
    assert isinstance(polyroute.__version__, str) and polyroute.__version__.count(".") == 2


def test_import_does_no_heavy_work() -> None:
    code = ("import sys, polyroute; heavy = {'torch', 'sentence_transformers', 'matplotlib', "
            "'sklearn', 'transformers'}; print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

"""Derived model files: built once under a lock, reused afterwards, hashed for the featurizer id."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyroute.features.artifacts import build_once, cache_root, file_sha256, models_dir


def test_models_live_under_the_cache_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path and models_dir() == tmp_path / "models"


def test_built_once_then_reused(tmp_path: Path) -> None:
    calls = []

    def build(out: Path) -> None:
        calls.append(out)
        out.write_text("model")

    target = tmp_path / "models" / "thing.onnx"
    assert build_once(target, build) == target
    assert build_once(target, build) == target
    assert len(calls) == 1 and target.read_text() == "model"
    assert calls[0] != target  # written elsewhere, then renamed into place


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken(out: Path) -> None:
        out.write_text("half a model")
        raise RuntimeError("exporter crashed")

    target = tmp_path / "thing.onnx"
    with pytest.raises(RuntimeError, match="exporter crashed"):
        build_once(target, broken)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".thing.onnx.lock"]


def test_directories_are_built_and_hashed_by_names_and_contents(tmp_path: Path) -> None:
    def build(out: Path) -> None:
        out.mkdir()
        (out / "a.json").write_text("{}")
        (out / "b.bin").write_bytes(b"\x00\x01")

    target = build_once(tmp_path / "table", build)
    digest = file_sha256(target)
    assert len(digest) == 64 and digest == file_sha256(target)
    (target / "b.bin").write_bytes(b"\x00\x02")
    assert file_sha256(target) != digest
    single = tmp_path / "one.bin"
    single.write_bytes(b"x")
    assert file_sha256(single) == \
        "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

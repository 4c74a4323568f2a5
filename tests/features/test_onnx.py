"""MiniLM on ONNX Runtime: exported once from the shipped weights, cached, hashed, and close to
the torch embeddings it replaces.

The export (torch.onnx.export, then int8 quantisation) runs once per test session, into a
session directory shared by these tests (about 20 s on an idle core)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyroute.data import load_bundled
from polyroute.errors import RouterError
from polyroute.features import OnnxMiniLMFeaturizer, TokenWindow, make_featurizer
from polyroute.features import onnx as onnx_module
from polyroute.pipeline import Pipeline


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both exports (fp32 and int8), built once for the whole session."""
    directory = tmp_path_factory.mktemp("onnx-exports")
    onnx_module.onnx_model_file(True, directory)
    return directory


@pytest.fixture(scope="module")
def shipped_prompts() -> list[str]:
    """One prompt of each bundled task, the longest of them included (truncation path)."""
    data = load_bundled()
    first: dict[str, str] = {}
    for task, prompt in zip(data.tasks, data.prompts, strict=True):
        first.setdefault(task, prompt)
    longest = max(data.prompts, key=len)
    return [*first.values(), longest]


@pytest.fixture(scope="module")
def torch_embeddings(shipped_prompts: list[str]) -> np.ndarray:
    return make_featurizer("minilm").encode(shipped_prompts)


def test_export_is_cached_and_reused(exports: Path, monkeypatch) -> None:
    files = {p.name: p.stat().st_mtime_ns for p in exports.glob("*.onnx")}
    assert set(files) == {"minilm-fp32.onnx", "minilm-int8.onnx"}

    def no_export(_target: Path) -> None:
        raise AssertionError("exported again although the cached file exists")

    monkeypatch.setattr(onnx_module, "export_minilm_onnx", no_export)
    monkeypatch.setattr(onnx_module, "quantize_int8", no_export)
    f = OnnxMiniLMFeaturizer(True, directory=exports)
    assert f.model_path == exports / "minilm-int8.onnx"
    assert f.encode(["What is two plus two?"]).shape == (1, 384)
    assert {p.name: p.stat().st_mtime_ns for p in exports.glob("*.onnx")} == files


def test_first_use_exports_into_the_cache_dir(tmp_path: Path, monkeypatch, exports: Path) -> None:
    """Without a directory the export lands under $POLYROUTE_CACHE_DIR/models (built from the
    session's files here rather than exported again)."""
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(onnx_module, "export_minilm_onnx",
                        lambda out: out.symlink_to(exports / "minilm-fp32.onnx"))
    f = make_featurizer("minilm-onnx")
    assert isinstance(f, OnnxMiniLMFeaturizer) and not f.quantize
    assert f.model_path == tmp_path / "models" / "minilm-fp32.onnx"
    assert f.id.startswith("onnx:all-MiniLM-L6-v2:fp32:sha256=") and f.id.endswith(":focus1000")


def test_embeddings_agree_with_the_torch_path(exports: Path, shipped_prompts: list[str],
                                              torch_embeddings: np.ndarray) -> None:
    fp32 = OnnxMiniLMFeaturizer(False, directory=exports).encode(shipped_prompts)
    int8 = OnnxMiniLMFeaturizer(True, directory=exports).encode(shipped_prompts)
    assert fp32.shape == int8.shape == torch_embeddings.shape and int8.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    assert np.sum(fp32 * torch_embeddings, axis=1).min() > 0.9999  # the same model
    assert np.sum(int8 * torch_embeddings, axis=1).min() > 0.97  # int8 weights, per channel


def test_rows_keep_their_order_across_length_sorted_batches(exports: Path,
                                                            shipped_prompts: list[str]) -> None:
    f = OnnxMiniLMFeaturizer(False, directory=exports, batch_size=3)
    x = f.encode(shipped_prompts)
    np.testing.assert_allclose(f.encode(shipped_prompts[::-1])[::-1], x, atol=1e-5)
    assert f.encode([]).shape == (0, 384)


def test_int8_embeddings_depend_a_little_on_the_batch(exports: Path,
                                                      shipped_prompts: list[str]) -> None:
    """Dynamic quantisation scales activations by each batch's range: a prompt embedded with
    others comes out slightly different from the same prompt alone (still cosine > 0.98)."""
    f = OnnxMiniLMFeaturizer(True, directory=exports)
    batched = f.encode(shipped_prompts)
    alone = np.stack([f.encode([t])[0] for t in shipped_prompts])
    assert np.sum(batched * alone, axis=1).min() > 0.98


def test_token_window_cuts_long_prompts_only(exports: Path, shipped_prompts: list[str]) -> None:
    short, long = "What is the capital of France?", shipped_prompts[-1]
    full = OnnxMiniLMFeaturizer(True, directory=exports)
    tail = OnnxMiniLMFeaturizer(True, directory=exports, window=TokenWindow(32, "tail"))
    ids = tail.token_ids([short, long])
    assert len(ids[1]) == 34 and ids[1][0] == ids[0][0] and ids[1][-1] == ids[0][-1]
    assert ids[0] == full.token_ids([short])[0]
    np.testing.assert_allclose(tail.encode([short]), full.encode([short]), atol=1e-6)
    assert float(tail.encode([long])[0] @ full.encode([long])[0]) < 0.99
    assert tail.id.endswith(":tail32") and make_featurizer("minilm-onnx-int8:tail32").window == \
        TokenWindow(32, "tail")


def test_a_router_refuses_another_export(exports: Path, tmp_path: Path, monkeypatch,
                                         two_cluster) -> None:
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    link = cache / "models" / "minilm-int8.onnx"
    link.symlink_to(exports / "minilm-int8.onnx")
    (cache / "models" / "minilm-fp32.onnx").symlink_to(exports / "minilm-fp32.onnx")
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(cache))
    pipe = Pipeline("knn", featurizer="minilm-onnx-int8", cache=False,
                    router_params={"k": 3}).fit(two_cluster.outcomes)
    saved = pipe.save(tmp_path / "router")
    assert Pipeline.load(saved, cache=False).featurizer.id == pipe.featurizer.id

    link.unlink()  # another export of the same model: here the fp32 file stands in for it
    link.symlink_to(exports / "minilm-fp32.onnx")
    with pytest.raises(RouterError, match="another ONNX export of all-MiniLM-L6-v2") as err:
        Pipeline.load(saved, cache=False)
    assert "SHA-256 differs" in str(err.value) and "retrain" in str(err.value)

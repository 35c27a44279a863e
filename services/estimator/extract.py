"""Face descriptors, L2-normalised float32, one model per descriptor version:
SFace 2021dec (128-D, version 200, the default) and MobileFaceNet (192-D, version 201).

Both read the same 112x112 ArcFace crop of the 250x250 sample; descriptors of different
versions live in different spaces and are never compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.common import descriptors as codec
from services.common import errors
from services.estimator import model_repo as mr
from services.estimator.align import WARP_SIZE, arcface_crop
from services.estimator.backends import InferenceBackend

DESCRIPTOR_LENGTH = 128  # SFace, the default version


@dataclass(frozen=True)
class Descriptor:
    data: bytes  # packed little-endian float32, L2-normalised
    version: int

    def as_array(self) -> np.ndarray:
        return codec.unpack(self.data)


def sface_input(warps: list[np.ndarray]) -> np.ndarray:
    """RGB 0..255 NCHW; SFace does its own normalisation inside the graph."""
    crops = [arcface_crop(w) for w in warps]
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32))


def mobilefacenet_input(warps: list[np.ndarray]) -> np.ndarray:
    """RGB NHWC, (x - 127.5) / 128, as the TFLite model was trained."""
    crops = np.stack([arcface_crop(w) for w in warps]).astype(np.float32)
    return np.ascontiguousarray((crops - 127.5) / 128.0)


@dataclass(frozen=True)
class DescriptorModel:
    model: str  # name in the model repository
    input_name: str
    output_name: str
    length: int
    prepare: Callable[[list[np.ndarray]], np.ndarray]


MODELS: dict[int, DescriptorModel] = {
    mr.SFACE_DESCRIPTOR_VERSION: DescriptorModel("sface", "data", "fc1", 128, sface_input),
    mr.MOBILEFACENET_DESCRIPTOR_VERSION: DescriptorModel(
        "mobilefacenet", "input", "embeddings", 192, mobilefacenet_input
    ),
}


def installed_versions(manifest: dict[str, object]) -> tuple[int, ...]:
    """The descriptor versions whose model the repository holds, ascending."""
    models = manifest.get("models")
    names = set(models) if isinstance(models, dict) else set()
    return tuple(sorted(v for v, m in MODELS.items() if m.model in names))


def check_version(version: int, installed: tuple[int, ...]) -> int:
    if version not in installed:
        raise errors.LunaError(
            errors.UNSUPPORTED_DESCRIPTOR_VERSION, f"Descriptor version {version} is not supported"
        )
    return version


def descriptor_input(
    warps: list[np.ndarray], version: int = mr.SFACE_DESCRIPTOR_VERSION
) -> np.ndarray:
    """The input of `version`'s model for these 250x250 RGB samples (pure CPU work, so a
    caller may build it in a worker thread and pass it to `extract_descriptors`)."""
    for w in warps:
        if w.shape != (WARP_SIZE, WARP_SIZE, 3):
            raise ValueError(f"sample must be {WARP_SIZE}x{WARP_SIZE}x3, got {w.shape}")
    return MODELS[version].prepare(warps)


async def extract_descriptors(
    backend: InferenceBackend,
    warps: list[np.ndarray],
    version: int = mr.SFACE_DESCRIPTOR_VERSION,
    *,
    prepared: np.ndarray | None = None,
) -> list[Descriptor]:
    """One descriptor of `version` per 250x250 RGB sample, in one batched model call;
    `prepared` is `descriptor_input(warps, version)` when the caller built it already."""
    if not warps:
        return []
    spec = MODELS[version]
    inputs = prepared if prepared is not None else descriptor_input(warps, version)
    out = await backend.infer(spec.model, {spec.input_name: inputs})
    vecs = codec.unit_rows(out[spec.output_name])
    return [Descriptor(codec.pack(v), version) for v in vecs]


def similarity(a: Descriptor, b: Descriptor) -> float:
    if a.version != b.version:
        raise ValueError("descriptors of different versions are never compared")
    return float(np.dot(a.as_array(), b.as_array()))

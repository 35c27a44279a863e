"""Face descriptors: SFace 2021dec, 128-D, L2-normalised float32, version 200."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.common import descriptors as codec
from services.estimator.align import WARP_SIZE, arcface_crop
from services.estimator.backends import InferenceBackend
from services.estimator.model_repo import SFACE_DESCRIPTOR_VERSION

DESCRIPTOR_LENGTH = 128


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


async def extract_descriptors(
    backend: InferenceBackend, warps: list[np.ndarray]
) -> list[Descriptor]:
    """One descriptor per 250x250 RGB sample, in one batched model call."""
    if not warps:
        return []
    for w in warps:
        if w.shape != (WARP_SIZE, WARP_SIZE, 3):
            raise ValueError(f"sample must be {WARP_SIZE}x{WARP_SIZE}x3, got {w.shape}")
    out = await backend.infer("sface", {"data": sface_input(warps)})
    vecs = codec.unit_rows(out["fc1"])
    return [Descriptor(codec.pack(v), SFACE_DESCRIPTOR_VERSION) for v in vecs]


def similarity(a: Descriptor, b: Descriptor) -> float:
    if a.version != b.version:
        raise ValueError("descriptors of different versions are never compared")
    return float(np.dot(a.as_array(), b.as_array()))

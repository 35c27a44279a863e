"""The one descriptor codec: packed little-endian float32 bytes <-> numpy rows.

Descriptors travel as `bytes` (ARCHITECTURE.md §4) and are compared by dot product, so every
stored descriptor is L2-normalised once, on the way in. Validation failures raise
`InvalidDescriptor`; each caller maps it to the LUNA code its API documents (12034 for a wrong
length everywhere; 12031 in the faces service and 26302 in the matcher for bad values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DTYPE = "<f4"
# Far above any face model's size (SFace: 128, MobileFaceNet: 192); bounds request memory.
MAX_DIMENSION = 4096
# The size of each descriptor version this platform extracts: SFace (200), MobileFaceNet (201).
VERSION_DIMS = {200: 128, 201: 192}


class InvalidDescriptor(ValueError):
    """`kind` is "length" (the byte length `length` is wrong) or "value" (NaN, inf or zero)."""

    def __init__(self, kind: str, length: int, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.length = length


def unpack(raw: bytes) -> np.ndarray:
    """One descriptor as a read-only float32 vector (no copy)."""
    return np.frombuffer(raw, dtype=DTYPE)


def unpack_rows(raws: Sequence[bytes], dim: int | None = None) -> np.ndarray:
    """Descriptors of one size as an (n, dim) float32 matrix; InvalidDescriptor on a bad size."""
    size = len(raws[0]) if raws else 4 * (dim or 0)
    for raw in raws:
        check_length(raw, dim)
        if len(raw) != size:
            raise InvalidDescriptor("length", len(raw), "descriptors of different sizes")
    return np.frombuffer(b"".join(raws), dtype=DTYPE).reshape(len(raws), size // 4)


def pack(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def check_length(raw: bytes, dim: int | None = None) -> None:
    n = len(raw)
    if not n or n % 4 or n > 4 * MAX_DIMENSION or (dim is not None and n != 4 * dim):
        raise InvalidDescriptor("length", n, f"Descriptor has incorrect length {n}")


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows L2-normalised as C-contiguous float32; InvalidDescriptor on NaN, inf or zero rows.

    Normalised in float64: a float32 row of large values would overflow its own norm.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if not np.isfinite(m).all():
        raise InvalidDescriptor("value", m.shape[1] * 4, "non-finite values")
    norms = np.linalg.norm(m, axis=1)
    if (norms < 1e-12).any():
        raise InvalidDescriptor("value", m.shape[1] * 4, "zero vector")
    return np.ascontiguousarray(m / norms[:, None], dtype=np.float32)


def normalise(raw: bytes, dim: int | None = None) -> bytes:
    """A packed descriptor checked and returned L2-normalised."""
    check_length(raw, dim)
    return pack(unit_rows(unpack(raw))[0])


def normalise_many(raws: Sequence[bytes], dim: int | None = None) -> list[bytes]:
    """Descriptors of one size checked and L2-normalised as one matrix."""
    return [row.tobytes() for row in unit_rows(unpack_rows(raws, dim))]


def mean_unit(raws: Sequence[bytes]) -> bytes:
    """The L2-normalised mean of L2-normalised descriptors of one version (LUNA's aggregation).

    The mean direction is closer to the person's centre than any single sample. Opposite
    vectors have no mean direction: the first one is kept.
    """
    if not raws:
        raise ValueError("no descriptors to aggregate")
    vectors = unpack_rows(raws).astype(np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:
        mean, norm = vectors[0], 1.0
    return pack(mean / norm)

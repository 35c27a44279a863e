"""Validation of descriptors entering the matcher, with the LUNA error codes it raises.

Codes (docs.visionlabs.ai/info/luna/troubleshooting/errors-description/code-N):
- 12034 "Descriptor has incorrect length {value}" -- wrong dimension.
- 26302 "Failed to load descriptor bytes {value}" -- NaN/inf or all-zero values.
- 31001 "Descriptor has the version ({value}) which does not match with version ({value})
  which is supposed to use for the matching" -- a descriptor of another version.
"""

from __future__ import annotations

import numpy as np

from services.common.errors import LunaError

BAD_LENGTH = 12034
BAD_DESCRIPTOR = 26302
VERSION_MISMATCH = 31001


def as_unit_rows(data: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) float32 C-contiguous, each row L2-normalised; raises LunaError on bad input.

    A 1-D array is one descriptor. Rows are re-normalised (not rejected) when slightly off unit
    length: cosine is what we compare, and float32 round-trips drift by ~1e-7.
    """
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        length = arr.shape[-1] if arr.ndim else 0
        raise LunaError(BAD_LENGTH, f"Descriptor has incorrect length {length * 4}")
    if not np.isfinite(arr).all():
        raise LunaError(BAD_DESCRIPTOR, "Failed to load descriptor bytes: non-finite values")
    norms = np.linalg.norm(arr, axis=1)
    if (norms < 1e-6).any():
        raise LunaError(BAD_DESCRIPTOR, "Failed to load descriptor bytes: zero vector")
    return np.ascontiguousarray(arr / norms[:, None], dtype=np.float32)


def check_version(version: int, expected: int | None) -> None:
    if expected is not None and version != expected:
        raise LunaError(
            VERSION_MISMATCH,
            f"Descriptor has the version ({version}) which does not match with version "
            f"({expected}) which is supposed to use for the matching",
        )

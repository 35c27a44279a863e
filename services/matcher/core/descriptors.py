"""Validation of descriptors entering the matcher, with the LUNA error codes it raises.

Codes (docs.visionlabs.ai/info/luna/troubleshooting/errors-description/code-N):
- 12034 "Descriptor has incorrect length {value}" -- wrong dimension.
- 26302 "Failed to load descriptor bytes {value}" -- NaN/inf or all-zero values.
- 31001 "Descriptor has the version ({value}) which does not match with version ({value})
  which is supposed to use for the matching" -- a descriptor of another version.
"""

from __future__ import annotations

import numpy as np

from services.common import descriptors as codec
from services.common import errors
from services.common.descriptors import InvalidDescriptor
from services.common.errors import LunaError

_FAST_MIN_NORM = 1e-6


def invalid(exc: InvalidDescriptor) -> LunaError:
    """The matcher's error for a descriptor the codec refused: 12034 or 26302."""
    if exc.kind == "length":
        return LunaError(
            errors.BAD_DESCRIPTOR_LENGTH, f"Descriptor has incorrect length {exc.length}"
        )
    return LunaError(errors.BAD_DESCRIPTOR, f"Failed to load descriptor bytes: {exc}")


def as_unit_rows(data: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) float32 C-contiguous, each row L2-normalised; raises LunaError on bad input.

    A 1-D array is one descriptor. Rows are re-normalised (not rejected) when slightly off unit
    length: cosine is what we compare, and float32 round-trips drift by ~1e-7.
    """
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    try:
        if arr.ndim != 2 or arr.shape[1] != dim:
            length = arr.shape[-1] if arr.ndim else 0
            raise InvalidDescriptor("length", length * 4, "wrong dimension")
        # Every search and add passes here: ordinary rows are normalised in float32, the BLAS
        # scan's arithmetic (a float64 round trip costs 3-20x); anything else (NaN, inf, a
        # norm that overflows float32 or is near zero) is the codec's to refuse or normalise.
        # np.linalg.norm(arr, axis=1)'s own arithmetic, bit for bit, without its argument
        # handling (a third of a one-row call).
        with np.errstate(over="ignore"):  # an overflowing row falls through to the codec
            norms = np.sqrt(np.add.reduce(arr * arr, axis=1))
        if np.isfinite(norms).all() and (norms >= _FAST_MIN_NORM).all():
            return np.ascontiguousarray(arr / norms[:, None], dtype=np.float32)
        return codec.unit_rows(arr)
    except InvalidDescriptor as exc:
        raise invalid(exc) from None


def unpack_unit(raw: bytes, dim: int) -> np.ndarray:
    """A packed descriptor as a unit (dim,) vector; LunaError 12034/26302 on bad input."""
    try:
        codec.check_length(raw, dim)
    except InvalidDescriptor as exc:
        raise invalid(exc) from None
    return as_unit_rows(codec.unpack(raw), dim)[0]


# Dimension of each descriptor version this platform extracts (SFace 200, MobileFaceNet 201);
# any other version is taken to be 128-D, the first model's size.
VERSION_DIMS = {200: 128, 201: 192}
DEFAULT_DIM = 128


def dim_of(version: int | None) -> int:
    return VERSION_DIMS.get(version or 0, DEFAULT_DIM)


def check_version(version: int, expected: int | None) -> None:
    if expected is not None and version != expected:
        raise LunaError(
            errors.DESCRIPTOR_VERSION_MISMATCH,
            f"Descriptor has the version ({version}) which does not match with version "
            f"({expected}) which is supposed to use for the matching",
        )

"""Pure helpers for attribute data: descriptor normalisation and input checks.

Descriptors are stored and published as packed little-endian float32, L2-normalised, so the
matcher can compare them with a plain dot product; normalising once here keeps every reader
from doing it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.common import descriptors as codec
from services.common import errors, ids
from services.common.descriptors import InvalidDescriptor


@dataclass(frozen=True)
class BasicAttributes:
    age: int
    gender: int
    # 0: not estimated (no ethnicity model here); stored as NULL.
    ethnicity: int


@dataclass(frozen=True)
class AttributeData:
    """Descriptors (version -> bytes), basic attributes and the samples they came from."""

    descriptors: dict[int, bytes] = field(default_factory=dict)
    descriptor_samples: tuple[str, ...] = ()
    basic_attributes: BasicAttributes | None = None
    basic_attributes_samples: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.descriptors and self.basic_attributes is None

    @property
    def samples(self) -> list[str]:
        """Every sample id once, descriptor samples first."""
        return list(dict.fromkeys((*self.descriptor_samples, *self.basic_attributes_samples)))


def invalid(exc: InvalidDescriptor) -> errors.LunaError:
    """The faces API's error for a descriptor the codec refused: 12034 or 12031."""
    if exc.kind == "length":
        return errors.LunaError(
            errors.BAD_DESCRIPTOR_LENGTH, f"Descriptor has incorrect length {exc.length}"
        )
    return errors.LunaError(
        errors.BAD_INPUT, "Descriptor is not valid: it must be finite and non-zero float32 values"
    )


def normalise(raw: bytes) -> bytes:
    """Check a packed float32 descriptor and return it L2-normalised (little-endian)."""
    try:
        return codec.normalise(raw)
    except InvalidDescriptor as exc:
        raise invalid(exc) from None


def check_sample_ids(values: Iterable[str], path: str) -> tuple[str, ...]:
    out = tuple(values)
    for value in out:
        if not ids.is_uuid(value):
            raise errors.bad_json(path, "value is not a valid uuid")
    if len(set(out)) != len(out):
        raise errors.bad_json(path, "the list has duplicated items")
    return out


def check_basic_attributes(basic: BasicAttributes) -> BasicAttributes:
    for name, value, allowed in (
        ("age", basic.age, range(0, 101)),
        ("gender", basic.gender, (0, 1)),
        ("ethnicity", basic.ethnicity, (0, 1, 2, 3, 4)),
    ):
        if value not in allowed:
            raise errors.bad_json(f"basic_attributes.{name}", f"value {value} is out of range")
    return basic


def checked(
    descriptors: Iterable[tuple[bytes, int]],
    descriptor_samples: Iterable[str],
    basic_attributes: BasicAttributes | None,
    basic_attributes_samples: Iterable[str],
) -> AttributeData:
    """Validate raw attribute input and return it with normalised descriptors.

    Raises before anything is written, so a bad attribute never leaves a partial face.
    """
    by_version: dict[int, bytes] = {}
    for raw, version in descriptors:
        if version <= 0:
            raise errors.bad_json(
                "face_descriptors.version", f"descriptor version {version} is not valid"
            )
        if version in by_version:
            raise errors.bad_json(
                "face_descriptors", f"descriptor version {version} is given twice"
            )
        by_version[version] = normalise(raw)
    data = AttributeData(
        descriptors=by_version,
        descriptor_samples=check_sample_ids(descriptor_samples, "face_descriptor_samples"),
        basic_attributes=(
            check_basic_attributes(basic_attributes) if basic_attributes is not None else None
        ),
        basic_attributes_samples=check_sample_ids(
            basic_attributes_samples, "basic_attributes_samples"
        ),
    )
    if data.empty:
        raise errors.bad_json("", "face_descriptors or basic_attributes is required")
    return data

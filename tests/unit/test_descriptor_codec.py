"""The descriptor codec every service uses: packing, checks and normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from services.common import descriptors


def test_normalise_returns_a_unit_vector_of_the_same_size() -> None:
    raw = np.array([3.0, 4.0, 0.0, 0.0], dtype="<f4").tobytes()
    out = descriptors.unpack(descriptors.normalise(raw))
    assert out.shape == (4,)
    assert np.allclose(out, [0.6, 0.8, 0.0, 0.0])


@pytest.mark.parametrize("raw", [b"", b"\x00" * 6, b"\x00" * (4 * 4097)])
def test_a_bad_length_is_named(raw: bytes) -> None:
    with pytest.raises(descriptors.InvalidDescriptor) as err:
        descriptors.normalise(raw)
    assert (err.value.kind, err.value.length) == ("length", len(raw))


def test_a_wrong_dimension_is_a_bad_length() -> None:
    with pytest.raises(descriptors.InvalidDescriptor) as err:
        descriptors.normalise(np.ones(8, "<f4").tobytes(), dim=128)
    assert err.value.kind == "length"


@pytest.mark.parametrize("values", [[0.0, 0.0], [float("nan"), 1.0], [float("inf"), 1.0]])
def test_zero_and_non_finite_vectors_are_bad_values(values: list[float]) -> None:
    with pytest.raises(descriptors.InvalidDescriptor) as err:
        descriptors.normalise(np.array(values, "<f4").tobytes())
    assert err.value.kind == "value"


def test_rows_of_different_sizes_are_refused() -> None:
    with pytest.raises(descriptors.InvalidDescriptor):
        descriptors.unpack_rows([np.ones(4, "<f4").tobytes(), np.ones(8, "<f4").tobytes()])


def test_normalise_many_matches_one_by_one() -> None:
    rng = np.random.default_rng(0)
    raws = [rng.normal(size=16).astype("<f4").tobytes() for _ in range(5)]
    assert descriptors.normalise_many(raws) == [descriptors.normalise(r) for r in raws]

import numpy as np

from services.matcher.core.similarity import (
    SFACE_COSINE_THRESHOLD,
    cosine_to_similarity,
    similarity_to_cosine,
)


def test_calibration_is_monotone_and_within_unit_interval() -> None:
    cos = np.linspace(-1.0, 1.0, 20001)
    sim = cosine_to_similarity(cos)
    assert sim.min() >= 0.0 and sim.max() <= 1.0
    assert np.all(np.diff(sim) > 0)
    assert sim[0] == 0.0 and sim[-1] == 1.0


def test_calibration_follows_luna_convention_not_half_cosine() -> None:
    # Strangers (cos ~0) near 0, SFace's threshold at one half, genuine pairs near 1.
    assert cosine_to_similarity(0.0) < 0.02
    assert abs(float(cosine_to_similarity(SFACE_COSINE_THRESHOLD)) - 0.5) < 1e-3
    assert cosine_to_similarity(0.7) > 0.95
    assert cosine_to_similarity(0.8) > 0.99
    # (1 + cos) / 2 would give 0.5 for a stranger.
    assert cosine_to_similarity(0.0) < (1 + 0.0) / 2 - 0.4


def test_inverse_round_trips() -> None:
    for s in np.linspace(0.001, 0.999, 257):
        c = similarity_to_cosine(float(s))
        assert -1.0 <= c <= 1.0
        assert abs(float(cosine_to_similarity(c)) - s) < 1e-9
    assert similarity_to_cosine(0.0) == -1.0
    assert similarity_to_cosine(1.0) == 1.0

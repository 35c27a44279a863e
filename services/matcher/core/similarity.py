"""Calibration of descriptor cosine into LUNA's similarity scale [0, 1].

LUNA reports a `similarity` where the same person scores near 1 and different people near 0.
Our recogniser is OpenCV's SFace (128-D, L2-normalised), whose documented same-person decision
threshold is cosine 0.363. Its cosine is *not* such a score: unrelated faces sit around
0 +- 0.1 and genuine pairs around 0.5-0.8, so (1 + cos) / 2 would put strangers at ~0.5.

We map cosine through a logistic centred on SFace's threshold, rescaled so that the map hits
exactly 0 at cos = -1 and 1 at cos = +1:

    g(c)  = 1 / (1 + exp(-A * (c - T)))            T = 0.363, A = 12.5
    s(c)  = (g(c) - g(-1)) / (g(1) - g(-1))

Anchors (rounded): cos -0.1 -> 0.003, 0.0 -> 0.011, 0.1 -> 0.036, 0.2 -> 0.115,
0.363 -> 0.500, 0.5 -> 0.847, 0.6 -> 0.951, 0.7 -> 0.986, 0.8 -> 0.996.
So `similarity >= 0.5` is exactly SFace's verification threshold, strangers land below ~0.05
and typical genuine pairs above ~0.85 -- the shape LUNA clients expect when they use
thresholds like 0.5-0.9. A = 12.5 puts cos 0 at ~0.01 (ln(99)/T would be 12.66; rounded).

The map is strictly increasing, so a threshold on similarity is a threshold on cosine:
`similarity_to_cosine()` inverts it and lets searches filter in cosine space (push-down).
"""

from __future__ import annotations

import math

import numpy as np

SFACE_COSINE_THRESHOLD = 0.363
LOGISTIC_SLOPE = 12.5


def _g(c: float) -> float:
    return 1.0 / (1.0 + math.exp(-LOGISTIC_SLOPE * (c - SFACE_COSINE_THRESHOLD)))


_LO = _g(-1.0)
_HI = _g(1.0)
_SPAN = _HI - _LO


def cosine_to_similarity(cos: np.ndarray | float) -> np.ndarray:
    """Map cosine(s) in [-1, 1] to similarity in [0, 1] (vectorised, float64 result)."""
    # minimum(maximum()) is np.clip's result without its Python dispatch, which costs more
    # than the arithmetic on the few values of one match.
    c = np.minimum(np.maximum(np.asarray(cos, dtype=np.float64), -1.0), 1.0)
    g = 1.0 / (1.0 + np.exp(-LOGISTIC_SLOPE * (c - SFACE_COSINE_THRESHOLD)))
    return np.minimum(np.maximum((g - _LO) / _SPAN, 0.0), 1.0)


def similarity_to_cosine(similarity: float) -> float:
    """Inverse map: the smallest cosine whose similarity is >= `similarity`.

    Returns -1.0 for similarity <= 0 (no filter) and 1.0 for similarity >= 1.
    """
    if similarity <= 0.0:
        return -1.0
    if similarity >= 1.0:
        return 1.0
    g = similarity * _SPAN + _LO
    return SFACE_COSINE_THRESHOLD + math.log(g / (1.0 - g)) / LOGISTIC_SLOPE

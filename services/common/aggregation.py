"""Aggregation of per-sample estimations into one, as LUNA's `aggregate_attributes` does.

A descriptor aggregated from several samples is `descriptors.mean_unit` of theirs. Basic
attributes are averaged likewise: the age in years, the gender by the mean probability of "male".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def male_probability(basic: Mapping[str, Any]) -> float:
    """P(male) from the estimator's {gender, gender_score} (score of the predicted gender)."""
    score = float(basic.get("gender_score", 1.0))
    return score if int(basic["gender"]) == 1 else 1.0 - score


def mean_basic_attributes(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-sample {age, gender, gender_score} -> one estimate of the same shape."""
    if not items:
        raise ValueError("no basic attributes to aggregate")
    age = float(np.mean([float(b["age"]) for b in items]))
    male = float(np.mean([male_probability(b) for b in items]))
    gender = 1 if male >= 0.5 else 0
    return {
        "age": round(age),
        "gender": gender,
        "gender_score": male if gender == 1 else 1.0 - male,
    }


def mean_liveness(
    items: Sequence[Mapping[str, Any]], threshold: float = 0.5, min_quality: float = 0.5
) -> dict[str, Any]:
    """Per-image liveness {prediction, estimations {score, quality}} -> one, by mean score.

    The estimator scales `score` so that 0.5 is its model's real/spoof boundary, and answers
    "unknown" (2) below quality 0.5; the aggregate applies the same rules to the means."""
    if not items:
        raise ValueError("no liveness estimations to aggregate")
    score = float(np.mean([float(i["estimations"]["score"]) for i in items]))
    quality = float(np.mean([float(i["estimations"].get("quality", 1.0)) for i in items]))
    if quality < min_quality:
        prediction = 2
    else:
        prediction = 1 if score >= threshold else 0
    return {"prediction": prediction, "estimations": {"quality": quality, "score": score}}

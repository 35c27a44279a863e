"""Filters of handler and verifier policies, evaluated on what the pipeline estimated.

Two kinds: detect_policy filters (head pose thresholds, mask/liveness states) decide whether a
detection is processed at all (a failing one is reported under `filtered_detections`, not as
an error); LUNA's "complex" filters (age, gender, ethnicity, liveness, deepfake, match
similarity) gate conditional tags and each storage step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MASK_STATES = {"missing": 1, "medical_mask": 2, "occluded": 3}
LIVENESS_NAMES = {0: "spoof", 1: "real", 2: "unknown"}
ETHNICITY_NAMES = {1: "african_american", 2: "indian", 3: "asian", 4: "caucasian"}


def detect_reasons(policy: dict[str, Any], est: dict[str, Any]) -> list[str]:
    """Why detect_policy filters a face out ([] when it passes)."""
    out = []
    pose = est.get("head_pose") or {}
    for angle in ("yaw", "pitch", "roll"):
        limit = policy.get(f"{angle}_threshold")
        # Same rule as /6/sdk: 180 (or unset) disables the filter, 0 filters every face.
        if limit is not None and limit < 180 and abs(float(pose.get(angle, 0.0))) >= limit:
            out.append(f"{angle}_threshold")
    states = policy.get("mask_states")
    if states:
        mask = est.get("mask") or {}
        if MASK_STATES.get(str(mask.get("predominant_mask", ""))) not in states:
            out.append("mask_states")
    states = policy.get("liveness_states")
    if states:
        if (est.get("liveness") or {}).get("prediction") not in states:
            out.append("liveness_states")
    return out


def detect_needs(policy: dict[str, Any]) -> set[str]:
    """Estimations the detect filters read, whether or not the handler shows them."""
    need = set()
    if any((policy.get(f"{a}_threshold") or 180) < 180 for a in ("yaw", "pitch", "roll")):
        need.add("head_pose")
    if policy.get("mask_states"):
        need.add("mask")
    if policy.get("liveness_states"):
        need.add("liveness")
    return need


@dataclass
class Facts:
    """What complex filters look at, for one event."""

    age: float | None = None
    gender: int | None = None
    ethnicity: str | None = None
    liveness: str | None = None
    deepfake: str | None = None
    # label -> best similarity of that match policy (absent: no candidate found).
    top_similarity: dict[str, float] = field(default_factory=dict)


def holds(filters: dict[str, Any] | None, facts: Facts) -> bool:
    """Whether every condition of a LUNA complex filter holds; a condition on an attribute
    that was not estimated does not hold (LUNA cannot confirm it)."""
    if not filters:
        return True
    if "age__gte" in filters and (facts.age is None or facts.age < filters["age__gte"]):
        return False
    if "age__lt" in filters and (facts.age is None or facts.age >= filters["age__lt"]):
        return False
    if "gender" in filters and facts.gender != filters["gender"]:
        return False
    if "ethnicities" in filters and facts.ethnicity not in filters["ethnicities"]:
        return False
    if "liveness" in filters and facts.liveness not in filters["liveness"]:
        return False
    if "deepfake" in filters and facts.deepfake not in filters["deepfake"]:
        return False
    for cond in filters.get("match") or ():
        sim = facts.top_similarity.get(cond["label"])
        if sim is None:
            return False
        if "similarity__gte" in cond and sim < cond["similarity__gte"]:
            return False
        if "similarity__lt" in cond and sim >= cond["similarity__lt"]:
            return False
    return True

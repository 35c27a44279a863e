"""ISO/IEC 19794-5 (full frontal image) checks that the models here can really compute.

Each check compares a measured value with the standard's requirement and says pass (1) or
fail (0); the verdict is 1 only when every computed check passes. Requirements this platform
has no model for (gaze, eyes and mouth state, glasses, red eyes, ...) are listed as not checked
with LUNA's "turned off" error, never guessed.

Thresholds: head pose from ISO 19794-5 §7.2.2 (pitch and yaw within 5 degrees, roll within 8);
eye distance at least 90 px (full frontal image type); head position and size ratios from the
full frontal geometry (§8.3: head width 50-75 % of the image width, length 60-90 % of the image
height, centred horizontally within 45-55 %); formats JPEG, JPEG 2000 and PNG (§7.2 allows JPEG
and JPEG 2000; PNG is lossless and accepted by LUNA). The image-quality checks use the
estimator's own 0..1 scores (1 = good) with LUNA's default face_quality thresholds.

The head box is the detector's face box, which runs from the brows to the chin, not crown to
chin: head_height is measured on it as it is, and its range is scaled by the box's share of a
head (0.8) so that the requirement keeps its meaning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

IMAGE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/x-portable-pixmap": "PPM",
}
ALLOWED_FORMATS = ("JPEG", "JPEG2000", "PNG")
# Share of the crown-to-chin head length that a detector face box covers.
FACE_BOX_HEAD_SHARE = 0.8
RANGES: dict[str, tuple[float, float]] = {
    "head_yaw": (-5.0, 5.0),
    "head_pitch": (-5.0, 5.0),
    "head_roll": (-8.0, 8.0),
    "head_horizontal_center": (0.45, 0.55),
    "head_width": (0.5, 0.75),
    "head_height": (0.6 * FACE_BOX_HEAD_SHARE, 0.9 * FACE_BOX_HEAD_SHARE),
    "image_width": (180.0, math.inf),
    "image_height": (180.0, math.inf),
    "eye_distance": (90.0, math.inf),
    "illumination_quality": (0.3, 1.0),
    "specularity_quality": (0.3, 1.0),
    "blurriness_quality": (0.61, 1.0),
    "dark_quality": (0.5, 1.0),
    "light_quality": (0.57, 1.0),
}
QUALITY_NAMES = {
    "illumination_quality": "illumination",
    "specularity_quality": "specularity",
    "blurriness_quality": "blurriness",
    "dark_quality": "darkness",
    "light_quality": "light",
}
# ISO 19794-5 requirements without a model here.
NOT_CHECKED = (
    "gaze",
    "left_eye",
    "right_eye",
    "mouth_smiling",
    "mouth_occluded",
    "mouth_open",
    "glasses",
    "red_eyes",
    "eyebrows_state",
    "headwear_type",
    "natural_light",
    "radial_distortion",
    "background_lightness",
    "background_uniformity",
)
# Checks that need the source photo (not a 250x250 warp).
SOURCE_ONLY = (
    "head_yaw",
    "head_pitch",
    "head_roll",
    "head_horizontal_center",
    "head_width",
    "head_height",
    "image_width",
    "image_height",
    "eye_distance",
)


@dataclass(frozen=True)
class FaceFacts:
    image_width: int
    image_height: int
    image_format: str  # JPEG, PNG, ... (the verified type of the input image)
    box: tuple[float, float, float, float] | None  # x, y, width, height; None for a warp
    landmarks5: Sequence[tuple[float, float]]  # left eye, right eye, nose, mouth corners
    head_pose: Mapping[str, float] | None  # pitch, roll, yaw in degrees
    quality: Mapping[str, float]  # the estimator's darkness, light, blurriness, ...


def _range_check(name: str, value: float) -> dict[str, Any]:
    lo, hi = RANGES[name]
    threshold: dict[str, float | None] = {
        "min": lo,
        "max": None if math.isinf(hi) else hi,
    }
    return {
        "name": name,
        "object_value": value,
        "threshold_value": threshold,
        "result": int(lo <= value <= hi),
    }


def checks(facts: FaceFacts) -> list[dict[str, Any]]:
    out = [
        {
            "name": "image_format",
            "object_value": facts.image_format,
            "threshold_value": list(ALLOWED_FORMATS),
            "result": int(facts.image_format in ALLOWED_FORMATS),
        }
    ]
    if facts.box is not None:
        x, _y, w, h = facts.box
        out.append(_range_check("image_width", float(facts.image_width)))
        out.append(_range_check("image_height", float(facts.image_height)))
        out.append(_range_check("head_horizontal_center", (x + w / 2) / max(facts.image_width, 1)))
        out.append(_range_check("head_width", w / max(facts.image_width, 1)))
        out.append(_range_check("head_height", h / max(facts.image_height, 1)))
        (lx, ly), (rx, ry) = facts.landmarks5[0], facts.landmarks5[1]
        out.append(_range_check("eye_distance", math.hypot(rx - lx, ry - ly)))
    if facts.head_pose is not None:
        for angle in ("yaw", "pitch", "roll"):
            out.append(_range_check(f"head_{angle}", float(facts.head_pose[angle])))
    for name, key in QUALITY_NAMES.items():
        out.append(_range_check(name, float(facts.quality[key])))
    return out


def verdict(results: list[dict[str, Any]]) -> int:
    return int(all(c["result"] == 1 for c in results))

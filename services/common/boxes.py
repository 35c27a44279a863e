"""A detected face's box as LUNA renders it: whole pixels (estimator, events, Backport 3)."""

from __future__ import annotations

from typing import Any


def rect(box: Any) -> dict[str, int]:
    """An estimator `Box` as LUNA's {"x", "y", "width", "height"} of rounded pixels."""
    return {
        "x": round(box.x),
        "y": round(box.y),
        "width": round(box.width),
        "height": round(box.height),
    }

"""Liveness of the face in each image, as /6/liveness and Backport 3's /4/liveness serve it: the
estimator call and the JSON of one estimation. The two APIs differ only around these: how many
faces an image may hold and how estimations are aggregated."""

from __future__ import annotations

from typing import Any

from luna.estimator.v1 import estimator_pb2 as epb


async def estimate_liveness(
    estimator: Any, images: list[epb.Image], multiface_policy: int
) -> epb.DetectResponse:
    """Each raw image's face detected (per `multiface_policy`) and its liveness estimated."""
    request = epb.DetectRequest(
        images=images,
        image_type=epb.IMAGE_TYPE_RAW,
        multiface_policy=multiface_policy,
        detect_face=True,
        estimations=["liveness"],
    )
    return await estimator.Detect(request, timeout=120)


def liveness_json(est: dict[str, Any]) -> dict[str, Any]:
    """A liveness estimation {prediction, estimations {score, quality}} as LUNA shows it: the
    real-person score is named "probability"."""
    e = est["estimations"]
    return {
        "prediction": int(est["prediction"]),
        "estimations": {"probability": float(e["score"]), "quality": float(e["quality"])},
    }

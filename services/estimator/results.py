"""Plain result types of the estimator core (the gRPC adapter maps them to protobuf)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float


@dataclass
class BodyResult:
    box: Box
    score: float
    keypoints: list[tuple[float, float, float]]  # 17 COCO keypoints: x, y, score


@dataclass
class FaceResult:
    box: Box
    score: float
    landmarks5: list[tuple[float, float]]
    sample: bytes  # the 250x250 warped sample, encoded (see sample_format)
    sample_format: str  # "jpeg" | "png"
    descriptor: bytes | None = None  # packed little-endian float32, L2-normalised
    descriptor_version: int | None = None
    estimations: dict[str, object] = field(default_factory=dict)
    body: BodyResult | None = None


@dataclass
class DetectResult:
    image_width: int
    image_height: int
    faces: list[FaceResult]
    bodies: list[BodyResult]


@dataclass(frozen=True)
class Features:
    available: tuple[str, ...]
    unvalidated: tuple[str, ...]  # available, but not validated (e.g. liveness on attacks)
    unavailable: tuple[str, ...]  # requesting these raises LunaError(ESTIMATION_UNAVAILABLE)
    descriptor_version: int
    detector: str
    descriptor_versions: tuple[int, ...] = ()

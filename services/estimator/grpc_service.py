"""Thin gRPC adapter of the estimator: protobuf <-> `Estimator` calls, nothing else."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping

import grpc
from google.protobuf import struct_pb2
from luna.common.v1 import error_pb2, info_pb2
from luna.estimator.v1 import estimator_pb2 as pb
from luna.estimator.v1 import estimator_pb2_grpc

from services.common import errors
from services.common.version import VERSION
from services.estimator import core, images
from services.estimator import model_repo as mr
from services.estimator.backends import describe
from services.estimator.core import Estimator
from services.estimator.results import BodyResult, DetectResult, FaceResult

IMAGE_TYPES = {
    pb.IMAGE_TYPE_UNSPECIFIED: core.IMAGE_RAW,
    pb.IMAGE_TYPE_RAW: core.IMAGE_RAW,
    pb.IMAGE_TYPE_FACE_WARP: core.IMAGE_FACE_WARP,
    pb.IMAGE_TYPE_BODY_WARP: core.IMAGE_BODY_WARP,
}
MULTIFACE = {
    pb.MULTIFACE_POLICY_UNSPECIFIED: 1,
    pb.MULTIFACE_POLICY_SINGLE: 0,
    pb.MULTIFACE_POLICY_ALL: 1,
    pb.MULTIFACE_POLICY_BEST: 2,
}
SAMPLE_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}
# One call may carry many images, but not unboundedly many: each is decoded in memory.
MAX_IMAGES = 64


def error_detail(err: errors.LunaError) -> error_pb2.ErrorDetail:
    return error_pb2.ErrorDetail(
        error_code=err.code, desc=err.desc, detail=err.detail, http_status=err.http_status
    )


def struct_of(values: Mapping[str, object]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)  # type: ignore[arg-type]
    return s


def descriptor_pb(data: bytes | None, version: int | None) -> pb.Descriptor | None:
    if data is None:
        return None
    return pb.Descriptor(data=data, version=int(version or 0))


def body_pb(b: BodyResult) -> pb.Body:
    return pb.Body(
        box=pb.Box(x=b.box.x, y=b.box.y, width=b.box.width, height=b.box.height),
        score=b.score,
        keypoints=[pb.Keypoint(x=x, y=y, score=s) for x, y, s in b.keypoints],
    )


def face_pb(f: FaceResult, bodies: list[BodyResult]) -> pb.Face:
    face = pb.Face(
        box=pb.Box(x=f.box.x, y=f.box.y, width=f.box.width, height=f.box.height),
        score=f.score,
        landmarks5=[pb.Point(x=x, y=y) for x, y in f.landmarks5],
        sample=f.sample,
        sample_content_type=SAMPLE_TYPES.get(f.sample_format, f"image/{f.sample_format}"),
        descriptor=descriptor_pb(f.descriptor, f.descriptor_version),
        estimations=struct_of(f.estimations),
    )
    if f.body is not None:
        # Identity, not equality: two bodies may have equal boxes.
        face.body_index = next(i for i, b in enumerate(bodies) if b is f.body)
    return face


def detections_pb(result: DetectResult) -> pb.ImageDetections:
    return pb.ImageDetections(
        image_width=result.image_width,
        image_height=result.image_height,
        faces=[face_pb(f, result.bodies) for f in result.faces],
        bodies=[body_pb(b) for b in result.bodies],
    )


def _check_count(n: int, what: str) -> None:
    if n == 0:
        raise errors.LunaError(errors.NO_DATA, f"Request does not contain {what}")
    if n > MAX_IMAGES:
        raise errors.LunaError(
            errors.BAD_INPUT, f"Too many {what}: {n}, at most {MAX_IMAGES} per request"
        )


class EstimatorServicer(estimator_pb2_grpc.EstimatorServiceServicer):
    def __init__(self, estimator: Estimator) -> None:
        self._est = estimator

    async def GetInfo(
        self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInfoResponse:
        return pb.GetInfoResponse(
            info=info_pb2.ServiceInfo(
                name="estimator", version=VERSION, components=components(self._est)
            )
        )

    async def GetFeatures(
        self, request: pb.GetFeaturesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFeaturesResponse:
        # The core's Features and the reply name their fields alike.
        features = dataclasses.asdict(self._est.features())
        return pb.GetFeaturesResponse(**features, backend=describe(self._est.backend))

    async def Detect(
        self, request: pb.DetectRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectResponse:
        _check_count(len(request.images), "images")
        image_type = IMAGE_TYPES.get(request.image_type)
        if image_type is None:
            raise errors.LunaError(errors.BAD_JSON, f"Unknown image_type {request.image_type}")
        policy = MULTIFACE.get(request.multiface_policy)
        if policy is None:
            raise errors.LunaError(
                errors.BAD_JSON, f"Unknown multiface_policy {request.multiface_policy}"
            )
        requested = set(request.estimations)
        # Request-level checks first, as LUNA does: an estimation nobody can do fails the
        # request, it is not repeated as an error of every image.
        core._check_estimations(requested, image_type)
        version = self._est._version(request.descriptor_version)
        if image_type == core.IMAGE_BODY_WARP:
            raise errors.LunaError(
                errors.FEATURE_DISABLED,
                "Forbidden. Body warps turned off: no body model is installed on this platform",
            )
        # Each read of a bytes field copies it out of the message (~1 ms for a 1.4 MB PNG on
        # this machine): read every image once.
        datas = [i.data for i in request.images]
        images.check_request_pixels(
            [
                images.image_pixels(d, i.content_type or None)
                for d, i in zip(datas, request.images, strict=True)
            ],
            self._est.limits.request_pixels,
        )

        async def one(image: pb.Image, data: bytes) -> pb.ImageResult:
            try:
                result = await self._est.detect(
                    data,
                    content_type=image.content_type or None,
                    multiface_policy=policy,
                    detect_face=request.detect_face or image_type == core.IMAGE_FACE_WARP,
                    detect_body=request.detect_body,
                    estimations=requested,
                    image_type=image_type,
                    use_exif=not request.ignore_exif,
                    descriptor_version=version,
                )
            except errors.LunaError as err:
                return pb.ImageResult(filename=image.filename, error=error_detail(err))
            return pb.ImageResult(filename=image.filename, detections=detections_pb(result))

        results = await asyncio.gather(
            *(one(i, d) for i, d in zip(request.images, datas, strict=True))
        )
        return pb.DetectResponse(results=results)

    async def Extract(
        self, request: pb.ExtractRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExtractResponse:
        _check_count(len(request.samples), "samples")
        samples = [_sample(s, self._est.limits) for s in request.samples]
        descriptors = await self._est.extract(samples, request.descriptor_version)  # type: ignore[arg-type]
        return pb.ExtractResponse(
            descriptors=[pb.Descriptor(data=d.data, version=d.version) for d in descriptors]
        )

    async def Estimate(
        self, request: pb.EstimateRequest, context: grpc.aio.ServicerContext
    ) -> pb.EstimateResponse:
        _check_count(len(request.samples), "samples")
        samples = [_sample(s, self._est.limits) for s in request.samples]
        results = await self._est.estimate(
            samples,
            set(request.estimations),
            request.descriptor_version,  # type: ignore[arg-type]
        )
        out = []
        for est in results:
            est = dict(est)
            desc = est.pop("face_descriptor", None)
            out.append(
                pb.SampleEstimations(
                    descriptor=(
                        pb.Descriptor(data=desc["descriptor"], version=desc["version"])  # type: ignore[index]
                        if desc is not None
                        else None
                    ),
                    estimations=struct_of(est),
                )
            )
        return pb.EstimateResponse(results=out)


def _sample(s: pb.Sample, limits: images.ImageLimits) -> object:
    """Decoded here, so a declared content type is checked like a detect image's; a sample
    too large for 250x250 is refused from its header without being decoded."""
    images.check_sample_header(s.data, s.content_type or None)
    return images.as_rgb_array(s.data, s.content_type or None, use_exif=False, limits=limits)


def components(est: Estimator) -> dict[str, str]:
    """Model names with sha256 prefixes, the descriptor version, detector and backend."""
    manifest = mr.load_manifest(est.repo_dir) or {}
    models = manifest.get("models", {})
    out = {
        "descriptor_version": str(est.descriptor_version),
        "detector": est.detector,
        "backend": describe(est.backend),
    }
    if isinstance(models, dict):
        for name, m in sorted(models.items()):
            src = m.get("source", {}) if isinstance(m, dict) else {}
            label = f"{src.get('package', '?')}=={src.get('version', '?')}"
            out[f"model.{name}"] = f"{label} sha256:{str(m.get('sha256', ''))[:12]}"
            if m.get("descriptor_version"):
                out[f"model.{name}.descriptor_version"] = str(m["descriptor_version"])
    return out

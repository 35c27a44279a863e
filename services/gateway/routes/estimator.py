"""/6/sdk, /6/detector, /6/features: the estimator behind LUNA's REST shapes.

Images are read as `images.read_images` describes; decoding, detection and estimation happen
in the estimator; this module only maps query flags to estimation names, filters, and renders
JSON.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import blobs_pb2

from services.common import errors, luna_json
from services.common.boxes import rect
from services.gateway.auth import AuthRule
from services.gateway.convert import SUCCESS, image_item
from services.gateway.images import IMAGE_TYPE, MULTIFACE, read_images, refuse_msgpack
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

MASK_STATES = {"missing": 1, "medical_mask": 2, "occluded": 3}

# Face estimations: LUNA query flag -> estimator name.
SDK_FACE_FLAGS = {
    "estimate_head_pose": "head_pose",
    "estimate_emotions": "emotions",
    "estimate_mask": "mask",
    "estimate_glasses": "glasses",
    "estimate_liveness": "liveness",
    "estimate_deepfake": "deepfake",
    "estimate_landmarks68": "landmarks68",
    "estimate_landmarks5": "landmarks5",
    "estimate_quality": "quality",
    "estimate_gaze": "gaze",
    "estimate_eyes_attributes": "eyes_attributes",
    "estimate_mouth_attributes": "mouth_attributes",
    "estimate_face_descriptor": "face_descriptor",
    "estimate_basic_attributes": "basic_attributes",
    "estimate_face_warp": "face_warp",
}
SDK_BODY_FLAGS = {
    "estimate_body_descriptor": "body_descriptor",
    "estimate_upper_body": "upper_body",
    "estimate_lower_body": "lower_body",
    "estimate_accessories": "accessories",
    "estimate_body_basic_attributes": "body_basic_attributes",
    "estimate_body_warp": "body_warp",
}
DETECTOR_FLAGS = {
    "estimate_head_pose": "head_pose",
    "estimate_emotions": "emotions",
    "estimate_mask": "mask",
    "detect_landmarks68": "landmarks68",
    "estimate_quality": "quality",
    "estimate_gaze": "gaze",
    "estimate_eyes_attributes": "eyes_attributes",
    "estimate_mouth_attributes": "mouth_attributes",
    "estimate_face_quality": "face_quality",
}
# Where an estimation goes in a LUNA face object.
DETECTION_ATTRIBUTES = ("head_pose", "emotions", "mask", "quality", "liveness")


# ---------------------------------------------------------------------------- output
def face_detection(face: epb.Face, est: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    """LUNA `detection` of a face: rect, landmarks and the detection-time attributes."""
    det: dict[str, Any] = {"rect": rect(face.box)}
    if "landmarks5" in wanted:
        det["landmarks5"] = [[p.x, p.y] for p in face.landmarks5]
    if "landmarks68" in est:
        det["landmarks68"] = est["landmarks68"]
    if "face_warp" in wanted:
        det["warp"] = base64.b64encode(face.sample).decode()
    attrs = {k: est[k] for k in DETECTION_ATTRIBUTES if k in est and k in wanted}
    if attrs:
        det["attributes"] = attrs
    return det


def face_attributes(face: epb.Face, est: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if "basic_attributes" in wanted and "basic_attributes" in est:
        attrs["basic_attributes"] = est["basic_attributes"]
    if "face_descriptor" in wanted and face.HasField("descriptor"):
        attrs["descriptor"] = {
            # base64 of the packed little-endian float32 vector (not VisionLabs' SDK blob).
            "sdk_descriptor": base64.b64encode(face.descriptor.data).decode(),
            "version": face.descriptor.version,
        }
    return attrs


def body_json(body: epb.Body) -> dict[str, Any]:
    return {
        "detection": {
            "rect": rect(body.box),
            "landmarks17": [[k.x, k.y, k.score] for k in body.keypoints],
        }
    }


@dataclass
class Filters:
    """LUNA's sdk/detector filters; a face failing one goes to the filtered list."""

    thresholds: dict[str, int] = field(default_factory=dict)  # pitch/roll/yaw
    mask_states: list[int] | None = None
    liveness_states: list[int] | None = None

    @classmethod
    def of(cls, q: dict[str, Any]) -> Filters:
        thresholds = {
            angle: int(q[f"{angle}_threshold"])
            for angle in ("pitch", "roll", "yaw")
            if f"{angle}_threshold" in q and int(q[f"{angle}_threshold"]) < 180
        }
        return cls(thresholds, q.get("mask_states"), q.get("liveness_states"))

    def needs(self) -> set[str]:
        """Estimations the filters read, whether or not the client shows them."""
        need = set()
        if self.thresholds:
            need.add("head_pose")
        if self.mask_states:
            need.add("mask")
        if self.liveness_states:
            need.add("liveness")
        return need

    def reasons(self, est: dict[str, Any]) -> list[str]:
        out = []
        pose = est.get("head_pose", {})
        for angle, limit in self.thresholds.items():
            if abs(float(pose.get(angle, 0.0))) >= limit:
                out.append(f"{angle}_threshold")
        if self.mask_states:
            state = MASK_STATES.get(est.get("mask", {}).get("predominant_mask", ""))
            if state not in self.mask_states:
                out.append("mask_states")
        if self.liveness_states:
            if est.get("liveness", {}).get("prediction") not in self.liveness_states:
                out.append("liveness_states")
        return out


def _flag(q: dict[str, Any], name: str) -> bool:
    return bool(q.get(name, 0))


# ---------------------------------------------------------------------------- /6/sdk
SDK_AUTH = AuthRule(resource="resources", action="sdk")


@table.route("POST", "/6/sdk", auth=SDK_AUTH, op="sdk")
async def sdk(ctx: Ctx) -> web.Response:
    q = ctx.query
    refuse_msgpack(ctx.request)
    for name in ("aggregate_attributes", "extract_exif"):
        if _flag(q, name):
            raise errors.LunaError(errors.NOT_IMPLEMENTED, f"{name}=1 is not implemented")
    if float(q.get("score_threshold", 0) or 0) > 0:
        raise errors.LunaError(
            errors.NOT_IMPLEMENTED,
            "score_threshold is not implemented: no descriptor quality score",
        )
    image_type = int(q.get("image_type", 0))
    faces_on = _flag(q, "detect_face") or image_type == 1
    bodies_on = _flag(q, "detect_body") or image_type == 2
    wanted = {n for f, n in SDK_FACE_FLAGS.items() if _flag(q, f)} if faces_on else set()
    body_wanted = {n for f, n in SDK_BODY_FLAGS.items() if _flag(q, f)} if bodies_on else set()
    image_level = {"people_count"} if _flag(q, "estimate_people_count") else set()
    if q.get("deepfake_states"):
        image_level.add("deepfake")
    filters = Filters.of(q)
    if not faces_on:
        filters = Filters()
    images = await read_images(ctx.request)
    request = epb.DetectRequest(
        images=images,
        image_type=IMAGE_TYPE[image_type],
        multiface_policy=MULTIFACE[int(q.get("multiface_policy", 1))],
        detect_face=faces_on,
        detect_body=bodies_on,
        # Every name goes to the estimator, which refuses the whole request with 11044 when
        # one has no model (body and image-level ones included) before touching any image.
        estimations=sorted(wanted | body_wanted | image_level | filters.needs()),
        ignore_exif="use_exif_info" in q and not _flag(q, "use_exif_info"),
    )
    reply = await ctx.clients.estimator.Detect(request, timeout=120)
    out = []
    for result in reply.results:
        item = image_item(result)
        if "error" not in item:
            item.update(_sdk_image(result.detections, wanted, filters))
        out.append(item)
    return json_response({"images_estimations": out})


def _sdk_image(det: epb.ImageDetections, wanted: set[str], filters: Filters) -> dict[str, Any]:
    """/6/sdk's answer for one read image: each face (with its body, when the estimator paired
    one), each body without a face, and the faces the filters dropped."""
    estimations: list[dict[str, Any]] = []
    filtered: list[dict[str, Any]] = []
    used_bodies: set[int] = set()
    for face in det.faces:
        est = luna_json.estimations(face)
        body = None
        if face.HasField("body_index"):
            used_bodies.add(face.body_index)
            body = body_json(det.bodies[face.body_index])
        entry = {
            "face": {
                "detection": face_detection(face, est, wanted),
                "attributes": face_attributes(face, est, wanted),
            },
            "body": body,
        }
        reasons = filters.reasons(est)
        if reasons:
            filtered.append({"object": entry, "filter_reasons": reasons})
        else:
            estimations.append(entry)
    for i, body_pb in enumerate(det.bodies):
        if i not in used_bodies:
            estimations.append({"face": None, "body": body_json(body_pb)})
    return {
        "status": 1,
        "error": SUCCESS,
        "estimations": estimations,
        "filtered_estimations": {"faces": filtered, "bodies": []},
    }


# ---------------------------------------------------------------------------- /6/detector
@table.route(
    "POST",
    "/6/detector",
    auth=AuthRule(resource="face_sample", action="creation"),
    op="detectFaces",
)
async def detector(ctx: Ctx) -> web.Response:
    q = ctx.query
    if _flag(q, "extract_exif"):
        raise errors.LunaError(errors.NOT_IMPLEMENTED, "extract_exif=1 is not implemented")
    wanted = {n for f, n in DETECTOR_FLAGS.items() if _flag(q, f)}
    filters = Filters(thresholds=Filters.of(q).thresholds)
    images = await read_images(ctx.request)
    warped = _flag(q, "warped_image")
    reply = await ctx.clients.estimator.Detect(
        epb.DetectRequest(
            images=images,
            image_type=epb.IMAGE_TYPE_FACE_WARP if warped else epb.IMAGE_TYPE_RAW,
            multiface_policy=MULTIFACE[int(q.get("multiface_policy", 1))],
            detect_face=True,
            estimations=sorted(wanted | filters.needs()),
            ignore_exif="use_exif_info" in q and not _flag(q, "use_exif_info"),
        ),
        timeout=120,
    )
    results = list(reply.results)
    if all(r.WhichOneof("outcome") == "error" for r in results) and len(results) == 1:
        # One image and it failed: a plain LUNA error, nothing stored.
        e = results[0].error
        raise errors.LunaError(e.error_code, e.detail)

    # Decide what is kept before storing anything, then store every sample in one call.
    sorted_faces = [_keep_or_drop(result, filters, wanted) for result in results]
    to_store = [
        blobs_pb2.BlobInput(
            kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE,
            content_type=face.sample_content_type,
            data=face.sample,
        )
        for keep, _ in sorted_faces
        for face, _ in keep
    ]
    sample_ids: list[str] = []
    if to_store:
        stored = await ctx.clients.blobs.PutBlobs(
            blobs_pb2.PutBlobsRequest(scope=ctx.scope(), blobs=to_store)
        )
        sample_ids = list(stored.blob_ids)

    ids_iter = iter(sample_ids)
    out = []
    for result, (keep, drop) in zip(results, sorted_faces, strict=True):
        item = image_item(result)
        if "error" not in item:
            samples = [_sample_json(next(ids_iter), face, est, wanted) for face, est in keep]
            item.update(
                status=1,
                error=SUCCESS,
                detections={"samples": samples, "filtered_detections": {"face_detections": drop}},
            )
        out.append(item)
    return json_response({"images": out}, status=201)


Kept = list[tuple[epb.Face, dict[str, Any]]]


def _keep_or_drop(
    result: epb.ImageResult, filters: Filters, wanted: set[str]
) -> tuple[Kept, list[dict[str, Any]]]:
    """An image's faces the filters keep (each with its estimations), and the JSON of those
    they drop, with the reasons."""
    keep: Kept = []
    drop: list[dict[str, Any]] = []
    if result.WhichOneof("outcome") != "detections":
        return keep, drop
    for face in result.detections.faces:
        est = luna_json.estimations(face)
        reasons = filters.reasons(est)
        if reasons:
            det = face_detection(face, est, wanted | {"landmarks5"})
            drop.append({"object": {"face": {"detection": det}}, "filter_reasons": reasons})
        else:
            keep.append((face, est))
    return keep, drop


def _sample_json(
    sample_id: str, face: epb.Face, est: dict[str, Any], wanted: set[str]
) -> dict[str, Any]:
    return {
        "face": {
            "sample_id": sample_id,
            "url": f"/6/samples/faces/{sample_id}",
            "detection": face_detection(face, est, wanted | {"landmarks5"}),
        },
        "body": None,
    }


# ---------------------------------------------------------------------------- /6/features
@table.route("GET", "/6/features", auth=None, op="getFeatures")
async def features(ctx: Ctx) -> web.Response:
    f = await ctx.clients.estimator.GetFeatures(epb.GetFeaturesRequest(), timeout=10)
    estimations = {name: True for name in f.available}
    estimations.update({name: False for name in f.unavailable})
    return json_response(
        {
            # No licence exists here: every feature is what the installed models can do.
            "license": True,
            "estimations": estimations,
            "components": {"image_store": True, "remote_sdk": True, "faces": True},
            # Not LUNA fields: honest notes for operators.
            "unvalidated_estimations": list(f.unvalidated),
            "unavailable_estimations": list(f.unavailable),
            "descriptor_version": f.descriptor_version,
            "face_detector": f.detector,
        }
    )

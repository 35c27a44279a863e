"""LUNA 3 extraction: an image (or a descriptor) in, stored descriptors (LUNA 5 faces) out.

A LUNA 3 descriptor is a LUNA 5 face holding one attribute with the descriptor; its portrait
is the face sample the estimator aligned, stored as a face sample blob. Detection and
estimation happen in the estimator, storage in the faces service.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import attributes_pb2, blobs_pb2, faces_pb2
from PIL import ExifTags, Image

from services.common import config, descriptors, errors
from services.common.boxes import rect
from services.common.shared_settings import DEFAULT_DESCRIPTOR_VERSION as DESCRIPTOR_VERSION
from services.gateway.backport3.core import Caller, bad_content_type, fail, q_flag, q_number

IMAGE_TYPES = {
    "image/jpeg": "image/jpeg",
    "image/png": "image/png",
    "image/bmp": "image/bmp",
    "image/x-windows-bmp": "image/bmp",
    "image/tiff": "image/tiff",
    "image/gif": "image/gif",
    "image/x-portable-pixmap": "image/x-portable-pixmap",
}
BASE64_IMAGE_TYPES = {
    "image/x-jpeg-base64": "image/jpeg",
    "image/x-png-base64": "image/png",
    "image/x-bmp-base64": "image/bmp",
    "image/x-windows-bmp-base64": "image/bmp",
    "image/x-tiff-base64": "image/tiff",
    "image/x-gif-base64": "image/gif",
    "image/x-portable-pixmap-base64": "image/x-portable-pixmap",
}
DESCRIPTOR_TYPES = ("application/x-vl-face-descriptor", "application/x-vl-face-descriptor-base64")
XPK_TYPES = ("application/x-vl-xpk", "application/x-vl-xpk-base64")
PORTRAITS = config.declare(
    "LUNA_BACKPORT3_ENABLE_PORTRAITS",
    True,
    "Backport 3 keeps each descriptor's portrait (its face sample); 0: no samples are stored "
    "and the portrait resources answer 11070.",
)
EMOTION_NAMES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")


# Options' yes/no flags by their Backport 3 name, the same in a query and in a policy.
_FLAG_NAMES = {
    "attributes": "estimate_attributes",
    "emotions": "estimate_emotions",
    "ethnicities": "estimate_ethnicities",
    "quality": "estimate_quality",
    "head_pose": "estimate_head_pose",
    "exif": "extract_exif",
}


@dataclass
class Options:
    """The extraction flags of /4/storage/descriptors (and of the handlers' policies)."""

    attributes: bool = False
    emotions: bool = False
    ethnicities: bool = False
    quality: bool = False
    head_pose: bool = False
    exif: bool = False
    warped: bool = False
    extract_descriptor: bool = True
    score_threshold: float = 0.0
    angles: dict[str, float] = field(default_factory=dict)  # pitch/yaw/roll -> max degrees

    @classmethod
    def from_query(cls, request: web.Request, *, allow_extract_flag: bool = True) -> Options:
        angles = {}
        for angle in ("pitch", "yaw", "roll"):
            # Out-of-range angles are ignored, as the seed documents.
            value = q_number(request, f"{angle}__lt", 0, 180, ignore_out_of_range=True)
            if value is not None:
                angles[angle] = value
        return cls(
            **{flag: bool(q_flag(request, name)) for flag, name in _FLAG_NAMES.items()},
            warped=bool(q_flag(request, "warped_image")),
            extract_descriptor=bool(q_flag(request, "extract_descriptor", 1))
            if allow_extract_flag
            else True,
            score_threshold=q_number(request, "score_threshold", 0, 1) or 0.0,
            angles=angles,
        )

    @classmethod
    def from_policies(cls, policies: dict[str, Any], warped: bool) -> Options:
        angles = {
            a: float(policies[f"{a}_threshold"])
            for a in ("pitch", "yaw", "roll")
            if float(policies.get(f"{a}_threshold", 180)) < 180
        }
        return cls(
            **{flag: bool(policies.get(name)) for flag, name in _FLAG_NAMES.items()},
            warped=warped,
            score_threshold=float(policies.get("score_threshold", 0.0)),
            angles=angles,
        )

    def estimations(self) -> list[str]:
        names = set() if self.warped else {"landmarks5"}
        if self.extract_descriptor:
            names.add("face_descriptor")
        if self.attributes:
            names.add("basic_attributes")
        if self.emotions:
            names.add("emotions")
        if self.quality:
            names.add("quality")
        if (self.head_pose or self.angles) and not self.warped:
            names.add("head_pose")
        if self.ethnicities:
            # No ethnicity model is installed: refuse rather than answer a made-up value.
            raise fail(errors.FEATURE_DISABLED, "Forbidden. Ethnicity estimation is not available")
        return sorted(names)


@dataclass
class Extracted:
    """One detected face: what the response shows and, once stored, its descriptor id."""

    face: epb.Face
    est: dict[str, Any]
    image_size: tuple[int, int]
    descriptor_id: str = ""

    def created_face(self, opts: Options) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.descriptor_id:
            out["id"] = self.descriptor_id
        if opts.warped:
            # LUNA 3's extracted_face_warp: a warp has no detection of its own to report.
            out["score"] = round(float(self.face.score), 6)
            return out
        out["rect"] = rect(self.face.box)
        out["rectISO"] = rect_iso(self.face)
        out["score"] = round(float(self.face.score), 6)
        attrs: dict[str, Any] = {}
        basic = self.est.get("basic_attributes")
        if opts.attributes and basic:
            attrs["age"] = round(basic["age"])
            attrs["gender"] = int(basic["gender"])
        if opts.emotions and "emotions" in self.est:
            em = self.est["emotions"]
            attrs["emotions"] = {
                "estimations": {k: float(em["estimations"].get(k, 0.0)) for k in EMOTION_NAMES},
                "predominant_emotion": em["predominant_emotion"],
            }
        if opts.head_pose and "head_pose" in self.est:
            hp = self.est["head_pose"]
            attrs["head_pose"] = {k: float(hp[k]) for k in ("yaw", "pitch", "roll")}
        if attrs:
            out["attributes"] = attrs
        if opts.quality and "quality" in self.est:
            q = self.est["quality"]
            # LUNA 3 no longer estimates saturation and answers 1 (Backport 3 manual).
            out["quality"] = {
                "dark": float(q["darkness"]),
                "light": float(q["light"]),
                "saturation": 1.0,
                "blurriness": float(q["blurriness"]),
            }
        return out


@dataclass
class Extraction:
    faces: list[Extracted]
    exif: dict[str, Any] | None = None
    from_descriptor: bool = False

    def faces_json(self, opts: Options) -> list[dict[str, Any]]:
        if self.from_descriptor:
            return [{"id": f.descriptor_id} for f in self.faces]
        return [f.created_face(opts) for f in self.faces]

    def response(self, opts: Options, **fields: Any) -> dict[str, Any]:
        """`fields`, then the one face extracted and the EXIF when asked for."""
        (face,) = self.faces_json(opts)
        body: dict[str, Any] = {**fields, "face": face}
        if self.exif is not None:
            body["exif"] = self.exif
        return body


def rect_iso(face: epb.Face) -> dict[str, int]:
    """The box scaled to an ISO/IEC 19794-5 full-frontal frame: width 4x the eye distance,
    height 4/3 of the width, the eye line at 60 % of the height from the bottom. May exceed
    the image, as LUNA documents."""
    if len(face.landmarks5) >= 2:
        le, re_ = face.landmarks5[0], face.landmarks5[1]
        eye_dist = math.hypot(re_.x - le.x, re_.y - le.y)
        cx, cy = (le.x + re_.x) / 2, (le.y + re_.y) / 2
    else:
        eye_dist = face.box.width / 2.5
        cx, cy = face.box.x + face.box.width / 2, face.box.y + face.box.height * 0.4
    width = 4.0 * eye_dist
    height = width * 4.0 / 3.0
    return {
        "x": round(cx - width / 2),
        "y": round(cy - height * 0.4),
        "width": round(width),
        "height": round(height),
    }


def _exif(data: bytes) -> dict[str, Any]:
    try:
        raw = Image.open(io.BytesIO(data)).getexif()
    except Exception:  # any undecodable EXIF is simply absent
        return {}
    out: dict[str, Any] = {}
    for tag, name in (
        (0x010F, "make"),
        (0x0110, "model"),
        (0x013B, "artist"),
        (0x0131, "software"),
    ):
        if tag in raw:
            out[name] = str(raw[tag]).strip("\x00 ")
    if 0x0112 in raw:
        out["orientation"] = int(raw[0x0112])
    ifd = raw.get_ifd(ExifTags.IFD.Exif)
    if 0x9209 in ifd:
        out["flash"] = str(ifd[0x9209])
    gps = raw.get_ifd(ExifTags.IFD.GPSInfo)
    if 2 in gps and 4 in gps:
        out["gps"] = {"latitude": str(gps[2]), "longitude": str(gps[4])}
    return out


def _media(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def _unbase64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        # The Backport 3 seed documents this one as an internal error (500).
        raise fail(errors.BAD_BASE64, "Failed convert data from base64 to bytes", 500) from None


def accepted_media(request: web.Request) -> str:
    media = _media(request)
    known = (*IMAGE_TYPES, *BASE64_IMAGE_TYPES, *DESCRIPTOR_TYPES, *XPK_TYPES)
    if media not in known:
        raise bad_content_type()
    return media


async def extract(
    request: web.Request,
    caller: Caller,
    opts: Options,
    *,
    store: bool = True,
    best_only: bool = False,
    no_faces: errors.LunaError | None = None,
) -> Extraction:
    """Detect, filter and (unless `store` is off) store the faces of the request body.

    `no_faces` is the error when nothing is detected; faces all dropped by the score or
    angle thresholds answer 36003 "No faces found." (400) everywhere.
    """
    media = accepted_media(request)
    body = await request.read()
    clients = request.app["clients"]
    if media in XPK_TYPES:
        # The xpk container is VisionLabs' proprietary format; nothing here can read it.
        raise fail(errors.XPK_INVALID, "Failed to parse xpk file")
    if media in DESCRIPTOR_TYPES:
        data = _unbase64(body) if media.endswith("-base64") else body
        return await _store_descriptor(clients, caller, data)
    if media in BASE64_IMAGE_TYPES:
        data, ctype = _unbase64(body), BASE64_IMAGE_TYPES[media]
    else:
        data, ctype = body, IMAGE_TYPES[media]
    if ctype == "image/gif":
        data, ctype = _gif_to_png(data), "image/png"
    reply = await clients.estimator.Detect(
        epb.DetectRequest(
            images=[epb.Image(data=data, content_type=ctype)],
            image_type=epb.IMAGE_TYPE_FACE_WARP if opts.warped else epb.IMAGE_TYPE_RAW,
            multiface_policy=epb.MULTIFACE_POLICY_ALL,
            detect_face=True,
            estimations=opts.estimations(),
            descriptor_version=installed_version(),
        ),
        timeout=120,
    )
    (result,) = reply.results
    if result.WhichOneof("outcome") == "error":
        e = result.error
        if e.error_code == errors.BAD_SAMPLE_SIZE:
            raise fail(errors.BAD_WARP_SIZE, "Bad image size for face warped image")
        raise fail(errors.INVALID_IMAGE_TYPE, e.detail)
    det = result.detections
    size = (det.image_width, det.image_height)
    found = [
        Extracted(face, json_format.MessageToDict(face.estimations), size) for face in det.faces
    ]
    if not found:
        raise no_faces or fail(errors.NO_FACES_FOUND, "No faces found.")
    kept = [f for f in found if _passes(f, opts)]
    if not kept:
        raise fail(errors.NO_FACES, "No faces found.")
    if best_only:
        kept = [max(kept, key=lambda f: f.face.score)]
    out = Extraction(kept, _exif(data) if opts.exif else None)
    if store and opts.extract_descriptor:
        await store_faces(clients, caller, kept)
    return out


def _gif_to_png(data: bytes) -> bytes:
    try:
        img = Image.open(io.BytesIO(data))
        img.seek(0)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="PNG")
    except Exception:  # PIL raises many types for bad data
        raise fail(errors.INVALID_IMAGE_TYPE, "Failed to decode image data") from None
    return buf.getvalue()


def _passes(f: Extracted, opts: Options) -> bool:
    if float(f.face.score) < opts.score_threshold:
        return False
    pose = f.est.get("head_pose") or {}
    return all(abs(float(pose.get(a, 0.0))) < limit for a, limit in opts.angles.items())


async def store_after_match(clients: Any, caller: Caller, extraction: Extraction) -> None:
    """Store what a match extracted once the match is done: a face stored first would make the
    matcher wait until it sees it before it may answer (read-your-writes)."""
    if not extraction.from_descriptor:
        await store_faces(clients, caller, extraction.faces)


async def track(clients: Any, caller: Caller, descriptor_ids: list[str]) -> None:
    """Start (again) the LUNA 3 TTL of descriptors that may now be attached to nothing."""
    if descriptor_ids:
        await clients.backport3.TrackDescriptors(
            bpb.TrackDescriptorsRequest(account_id=caller.account_id, descriptor_ids=descriptor_ids)
        )


async def store_faces(clients: Any, caller: Caller, faces: list[Extracted]) -> None:
    if not PORTRAITS.get_bool():
        await _create_faces(clients, caller, faces, [""] * len(faces))
        return
    stored = await clients.blobs.PutBlobs(
        blobs_pb2.PutBlobsRequest(
            scope=caller.scope,
            blobs=[
                blobs_pb2.BlobInput(
                    kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE,
                    content_type=f.face.sample_content_type,
                    data=f.face.sample,
                )
                for f in faces
            ],
        )
    )
    await _create_faces(clients, caller, faces, list(stored.blob_ids))


async def _create_faces(
    clients: Any, caller: Caller, faces: list[Extracted], sample_ids: list[str]
) -> None:
    for f, sample_id in zip(faces, sample_ids, strict=True):
        d = f.face.descriptor
        f.descriptor_id = await _create_face(clients, caller, d.data, d.version, sample_id)
    await track(clients, caller, [f.descriptor_id for f in faces])


async def _create_face(
    clients: Any, caller: Caller, descriptor: bytes, version: int, sample_id: str
) -> str:
    """A LUNA 5 face holding one descriptor (and its sample): a LUNA 3 descriptor's id."""
    created = await clients.faces.CreateFace(
        faces_pb2.CreateFaceRequest(
            scope=caller.scope,
            attribute=faces_pb2.FaceAttributeInput(
                data=attributes_pb2.AttributeData(
                    descriptors=[attributes_pb2.Descriptor(descriptor=descriptor, version=version)],
                    descriptor_samples=[sample_id] if sample_id else [],
                )
            ),
        )
    )
    return str(created.face.face_id)


def installed_version() -> int:
    """The installation's descriptor version (LUNA_DEFAULT_DESCRIPTOR_VERSION): what /4
    extracts and what an SDK descriptor (a bare packed vector here) is taken to be."""
    return DESCRIPTOR_VERSION.get_int()


def given_descriptor(data: bytes, *, sdk: bool = True, version: int = 0) -> bytes:
    """A descriptor given as bytes (a packed float32 vector of `version`, by default the
    installation's), normalised.

    12038 when it is not one; a raw descriptor (`sdk` off) of a wrong length is 12034.
    """
    dim = descriptors.VERSION_DIMS.get(version or installed_version(), 128)
    try:
        return descriptors.normalise(data, dim)
    except descriptors.InvalidDescriptor as exc:
        if exc.kind == "length" and not sdk:
            raise fail(errors.BAD_DESCRIPTOR_LENGTH, str(exc)) from None
        raise fail(errors.SDK_DESCRIPTOR_INVALID, "SDK descriptor is not valid") from None


async def _store_descriptor(clients: Any, caller: Caller, data: bytes) -> Extraction:
    created = await _create_face(clients, caller, given_descriptor(data), installed_version(), "")
    await track(clients, caller, [created])
    return Extraction([Extracted(epb.Face(), {}, (0, 0), created)], from_descriptor=True)

"""/6/iso and /6/liveness: per-image checks that store nothing.

Both read images the way /6/sdk does (raw, base64, multipart, JSON), detect faces in the
estimator and render one result per image; a broken image gets its own error while the others
are answered.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web
from luna.estimator.v1 import estimator_pb2 as epb

from services.common import aggregation, errors, luna_json
from services.common.boxes import rect
from services.gateway import iso_checks
from services.gateway.auth import AuthRule
from services.gateway.convert import SUCCESS, image_item
from services.gateway.images import BASE64_TYPES, MULTIFACE, read_images, refuse_msgpack
from services.gateway.liveness import estimate_liveness, liveness_json
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()


def _error(code: int, detail: str) -> dict[str, Any]:
    return errors.LunaError(code, detail).as_json()


def _image_format(image: epb.Image) -> str:
    ctype = BASE64_TYPES.get(image.content_type, image.content_type)
    if ctype in iso_checks.IMAGE_FORMATS:
        return iso_checks.IMAGE_FORMATS[ctype]
    data = base64.b64decode(image.data) if image.content_type in BASE64_TYPES else image.data
    # No declared type (it is always declared here today): name the format by its magic bytes.
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    return ctype or "unknown"


# ---------------------------------------------------------------------------- /6/iso
def _not_checked(warped: bool) -> list[dict[str, Any]]:
    """ISO requirements this request cannot judge, each with the reason as a LUNA error."""
    out = [
        {
            "name": name,
            "error": _error(errors.FEATURE_DISABLED, f"{name} estimation turned off: no model"),
        }
        for name in iso_checks.NOT_CHECKED
    ]
    if warped:
        out += [
            {
                "name": name,
                "error": _error(
                    errors.BAD_INPUT, f"{name} needs the source image, not a face warp"
                ),
            }
            for name in iso_checks.SOURCE_ONLY
        ]
    return out


def _iso_facts(
    image: epb.Image, det: epb.ImageDetections, face: epb.Face, warped: bool
) -> iso_checks.FaceFacts:
    est = luna_json.estimations(face)
    return iso_checks.FaceFacts(
        image_width=det.image_width,
        image_height=det.image_height,
        image_format=_image_format(image),
        box=None if warped else (face.box.x, face.box.y, face.box.width, face.box.height),
        landmarks5=[(p.x, p.y) for p in face.landmarks5],
        head_pose=None if warped else est["head_pose"],
        quality=est["quality"],
    )


@table.route("POST", "/6/iso", auth=AuthRule(resource="resources", action="iso"), op="iso")
async def iso(ctx: Ctx) -> web.Response:
    q = ctx.query
    refuse_msgpack(ctx.request)
    if q.get("extract_exif"):
        raise errors.LunaError(errors.NOT_IMPLEMENTED, "extract_exif=1 is not implemented")
    warped = int(q.get("image_type", 0)) == 1
    images = await read_images(ctx.request)
    reply = await ctx.clients.estimator.Detect(
        epb.DetectRequest(
            images=images,
            image_type=epb.IMAGE_TYPE_FACE_WARP if warped else epb.IMAGE_TYPE_RAW,
            multiface_policy=MULTIFACE[int(q.get("multiface_policy", 0))],
            detect_face=True,
            # Head pose needs the source photo (LUNA: not with warps).
            estimations=["quality"] if warped else ["head_pose", "quality"],
        ),
        timeout=120,
    )
    not_checked = _not_checked(warped)
    out = []
    for image, result in zip(images, reply.results, strict=True):
        item = image_item(result)
        if "error" in item:
            out.append(item)
            continue
        det = result.detections
        if not det.faces:
            item.update(status=0, error=_error(errors.NO_FACES, "No faces found."))
            out.append(item)
            continue
        facts = [_iso_facts(image, det, face, warped) for face in det.faces]
        faces = [
            {
                "detection": {
                    "rect": rect(face.box),
                    "landmarks5": [[p.x, p.y] for p in face.landmarks5],
                },
                "iso": {
                    "status": iso_checks.verdict(checks),
                    "checks": checks,
                    "not_checked": not_checked,
                },
            }
            for face, checks in zip(det.faces, map(iso_checks.checks, facts), strict=True)
        ]
        item.update(status=1, error=SUCCESS, detections={"faces": faces})
        out.append(item)
    return json_response({"images": out})


# ---------------------------------------------------------------------------- /6/liveness
@table.route(
    "POST",
    "/6/liveness",
    auth=AuthRule(resource="resources", action="liveness"),
    op="predictLiveness",
)
async def liveness(ctx: Ctx) -> web.Response:
    # `meta` / `x_meta` parts are LUNA's deprecated device hints; the model does not use them.
    images = await read_images(ctx.request, skip_parts=frozenset({"meta", "x_meta"}))
    # One person per photo: several faces are this image's error 11038.
    reply = await estimate_liveness(ctx.clients.estimator, images, epb.MULTIFACE_POLICY_SINGLE)
    out = []
    found: list[dict[str, Any]] = []
    for result in reply.results:
        item = image_item(result)
        out.append(item)
        if "error" in item:  # the image could not be read
            continue
        if not result.detections.faces:
            item.update(status=0, error=_error(errors.NO_FACES, "No faces found."))
            continue
        est = luna_json.estimations(result.detections.faces[0])["liveness"]
        found.append(est)
        item.update(status=1, error=SUCCESS, liveness=liveness_json(est))
    body: dict[str, Any] = {"images": out}
    if ctx.query.get("aggregate"):
        body["aggregate_estimations"] = {
            "liveness": liveness_json(aggregation.mean_liveness(found)) if found else None
        }
    return json_response(body)

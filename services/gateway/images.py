"""Images in a request body, as /6/sdk, /6/detector, /6/iso, /6/liveness, /6/samples and
event generation read them: a raw body of any LUNA image type (base64 variants included),
multipart/form-data (one image per part) or JSON `{"images": [{"image": <base64>,
"mimetype": ..., "filename": ...}]}`. Decoding happens in the estimator."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.estimator.v1 import estimator_pb2 as epb

from services.common import errors
from services.common.luna_json import BASE64_TYPES
from services.gateway import jsonbody, multipart

IMAGE_TYPES = (
    "image/jpeg",
    "image/png",
    "image/bmp",
    "image/x-portable-pixmap",
    "image/tiff",
)
TO_BASE64 = {v: k for k, v in BASE64_TYPES.items()}
SDK_BODY_TYPES = ("application/json", "multipart/form-data", *IMAGE_TYPES, *BASE64_TYPES)
MULTIFACE = {
    0: epb.MULTIFACE_POLICY_SINGLE,
    1: epb.MULTIFACE_POLICY_ALL,
    2: epb.MULTIFACE_POLICY_BEST,
}
IMAGE_TYPE = {
    0: epb.IMAGE_TYPE_RAW,
    1: epb.IMAGE_TYPE_FACE_WARP,
    2: epb.IMAGE_TYPE_BODY_WARP,
}


def refuse_msgpack(request: web.Request) -> None:
    """Per-image answers come as JSON only: an Accept asking for msgpack alone is 12029."""
    accept = (request.headers.get("Accept") or "").lower()
    if "application/msgpack" in accept and "application/json" not in accept:
        raise errors.LunaError(errors.NOT_IMPLEMENTED, "msgpack responses are not implemented")


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def check_body_type(media: str, allowed: tuple[str, ...]) -> None:
    if not media:
        raise errors.LunaError(errors.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
    if media not in allowed:
        raise errors.LunaError(
            errors.UNACCEPTABLE_CONTENT_TYPE,
            f"Content type is unacceptable allowed types: '{', '.join(allowed)}'",
        )


async def read_images(
    request: web.Request, skip_parts: frozenset[str] = frozenset()
) -> list[epb.Image]:
    """The images of a request body, each with its declared type (checked by the estimator).

    `skip_parts`: multipart part names that carry something else (LUNA's liveness `meta`)."""
    media = media_type(request)
    check_body_type(media, SDK_BODY_TYPES)
    if media == "multipart/form-data":
        return await _multipart_images(request, skip_parts)
    raw = await request.read()
    if media == "application/json":
        return _json_images(raw)
    # An empty body is still "an image" here: the estimator answers it with 18002 like any
    # other undecodable image.
    return [epb.Image(data=raw, content_type=media)]


async def _multipart_images(
    request: web.Request, skip_parts: frozenset[str] = frozenset()
) -> list[epb.Image]:
    out: list[epb.Image] = []
    async for part in multipart.parts(request):
        if part.name in skip_parts:
            continue
        if not is_image(part.content_type):
            raise bad_part(part)
        out.append(part_image(part))
    if not out:
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    return out


def _json_images(raw: bytes) -> list[epb.Image]:
    if not raw.strip():
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    body = jsonbody.loads(raw)
    items = jsonbody.nonempty_array(body, "images")
    return [json_image(item, f"images.{i}") for i, item in enumerate(items)]


def json_image(item: Any, path: str) -> epb.Image:
    """`{"image": <base64>, "mimetype": ..., "filename": ...}` at `path` of a JSON body."""
    if not isinstance(item, dict) or not isinstance(item.get("image"), str):
        raise errors.bad_json(f"{path}.image", "base64 image string required")
    mimetype = item.get("mimetype", "image/jpeg")
    if mimetype not in TO_BASE64:
        raise errors.bad_json(f"{path}.mimetype", f"one of {', '.join(IMAGE_TYPES)}")
    return epb.Image(
        data=item["image"].encode(),
        content_type=TO_BASE64[mimetype],
        filename=str(item.get("filename", "")),
    )


def is_image(media: str) -> bool:
    return media in IMAGE_TYPES or media in BASE64_TYPES


def part_image(part: multipart.Part) -> epb.Image:
    return epb.Image(data=part.data, content_type=part.content_type, filename=part.filename)


def bad_part(part: multipart.Part) -> errors.LunaError:
    """12041 for a multipart part of a type the route does not take."""
    name = part.name or part.filename
    return errors.LunaError(
        errors.MULTIPART_BAD_TYPE, f"Multipart with name '{name}' has bad Content-Type"
    )

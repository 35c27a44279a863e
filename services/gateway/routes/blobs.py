"""/6/samples/{faces|bodies}, /6/images, /6/objects: LUNA's Image Store over BlobsService.

Uploaded samples and images are decoded by the estimator before they are stored, so a
truncated or mistyped image is refused with its LUNA error and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import blobs_pb2

from services.common import errors
from services.gateway.auth import AuthRule
from services.gateway.images import IMAGE_TYPES, check_body_type, media_type
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

SAMPLE_KINDS = {
    "faces": blobs_pb2.BLOB_KIND_FACE_SAMPLE,
    "bodies": blobs_pb2.BLOB_KIND_BODY_SAMPLE,
}
SAMPLE_RESOURCES = {"faces": "face_sample", "bodies": "body_sample"}
META_PREFIX = "x-luna-meta-"


def _samples_type(ctx: Ctx) -> str:
    kind = ctx.request.match_info["samples_type"]
    if kind not in SAMPLE_KINDS:
        raise errors.LunaError(errors.PAGE_NOT_FOUND, "Page not found")
    return kind


def _check_permission(ctx: Ctx, resource: str, action: str) -> None:
    """Per-kind token permission for routes whose resource depends on the path."""
    assert ctx.principal is not None
    if not ctx.principal.allows(resource, action):
        raise errors.LunaError(
            errors.PERMISSION_DENIED,
            f"Request denied due to token restrictions, required '{action}' permission for "
            f"'{resource}'",
        )


async def _validated_image(ctx: Ctx, *, face_warp: bool) -> tuple[bytes, str]:
    """The body, after the estimator decoded it (and, for face samples, checked 250x250)."""
    media = media_type(ctx.request)
    check_body_type(media, IMAGE_TYPES)
    data = await ctx.request.read()
    reply = await ctx.clients.estimator.Detect(
        epb.DetectRequest(
            images=[epb.Image(data=data, content_type=media)],
            image_type=epb.IMAGE_TYPE_FACE_WARP if face_warp else epb.IMAGE_TYPE_RAW,
            detect_face=False,
        ),
        timeout=60,
    )
    result = reply.results[0]
    if result.WhichOneof("outcome") == "error":
        raise errors.LunaError(result.error.error_code, result.error.detail)
    return data, media


async def _put(ctx: Ctx, blob: blobs_pb2.BlobInput) -> str:
    reply = await ctx.clients.blobs.PutBlobs(
        blobs_pb2.PutBlobsRequest(scope=ctx.scope(), blobs=[blob])
    )
    return str(reply.blob_ids[0])


async def _get(ctx: Ctx, kind: int, blob_id: str, metadata_only: bool) -> blobs_pb2.Blob:
    reply = await ctx.clients.blobs.GetBlob(
        blobs_pb2.GetBlobRequest(
            scope=ctx.scope(), kind=kind, blob_id=blob_id, metadata_only=metadata_only
        )
    )
    return reply.blob


async def _delete(ctx: Ctx, kind: int, blob_id: str) -> web.Response:
    await ctx.clients.blobs.DeleteBlob(
        blobs_pb2.DeleteBlobRequest(scope=ctx.scope(), kind=kind, blob_id=blob_id)
    )
    return web.Response(status=204)


def _content(
    blob: blobs_pb2.Blob, head: bool, headers: dict[str, str] | None = None
) -> web.Response:
    headers = dict(headers or {})
    if head:
        # HEAD: the headers GET would send, without the body.
        headers["Content-Length"] = str(blob.size)
        headers["Content-Type"] = blob.content_type
        return web.Response(status=200, headers=headers)
    return web.Response(body=blob.data, headers={**headers, "Content-Type": blob.content_type})


def _no_headers(ctx: Ctx, blob: blobs_pb2.Blob) -> dict[str, str]:
    return {}


def _stored(
    name: str,
    kind: int,
    headers: Callable[[Ctx, blobs_pb2.Blob], dict[str, str]] = _no_headers,
) -> None:
    """GET, HEAD and DELETE /6/<name>s/{<name>_id} of one kind of stored blob."""
    path, id_name, title = f"/6/{name}s/{{{name}_id}}", f"{name}_id", name.capitalize()

    async def answer(ctx: Ctx, head: bool) -> web.Response:
        blob = await _get(ctx, kind, ctx.request.match_info[id_name], head)
        return _content(blob, head, headers(ctx, blob))

    async def delete(ctx: Ctx) -> web.Response:
        return await _delete(ctx, kind, ctx.request.match_info[id_name])

    view, deletion = (
        AuthRule(resource=name, action="view"),
        AuthRule(resource=name, action="deletion"),
    )
    table.get_and_head(path, auth=view, ops=(f"get{title}", f"check{title}"), answer=answer)
    table.route("DELETE", path, auth=deletion, op=f"delete{title}")(delete)


# ---------------------------------------------------------------------------- samples
AUTHED = AuthRule()


@table.route("POST", "/6/samples/{samples_type}", auth=AUTHED, op="saveSample")
async def save_sample(ctx: Ctx) -> web.Response:
    kind = _samples_type(ctx)
    _check_permission(ctx, SAMPLE_RESOURCES[kind], "creation")
    # Face samples must be 250x250 warps (11030); there is no body model to check bodies by.
    data, media = await _validated_image(ctx, face_warp=kind == "faces")
    sample_id = await _put(
        ctx, blobs_pb2.BlobInput(kind=SAMPLE_KINDS[kind], content_type=media, data=data)
    )
    return json_response(
        {"sample_id": sample_id, "url": f"/6/samples/{kind}/{sample_id}"}, status=201
    )


# Where a sample path points: (token permission resource, blob kind, sample id).
Locate = Callable[[Ctx], tuple[str, int, str]]


def _sample_routes(path: str, ops: tuple[str, str, str], locate: Locate) -> None:
    """GET, HEAD and DELETE of one stored sample; the token permission depends on its kind."""

    async def answer(ctx: Ctx, head: bool) -> web.Response:
        resource, kind, sample_id = locate(ctx)
        _check_permission(ctx, resource, "view")
        return _content(await _get(ctx, kind, sample_id, head), head)

    async def delete(ctx: Ctx) -> web.Response:
        resource, kind, sample_id = locate(ctx)
        _check_permission(ctx, resource, "deletion")
        return await _delete(ctx, kind, sample_id)

    table.get_and_head(path, auth=AUTHED, ops=ops[:2], answer=answer)
    table.route("DELETE", path, auth=AUTHED, op=ops[2])(delete)


def _typed_sample(ctx: Ctx) -> tuple[str, int, str]:
    kind = _samples_type(ctx)
    return SAMPLE_RESOURCES[kind], SAMPLE_KINDS[kind], ctx.request.match_info["sample_id"]


_sample_routes(
    "/6/samples/{samples_type}/{sample_id}",
    ("getSample", "checkSample", "deleteSample"),
    _typed_sample,
)


# ---------------------------------------------------------------------------- images
@table.route(
    "POST", "/6/images", auth=AuthRule(resource="image", action="creation"), op="createImage"
)
async def create_image(ctx: Ctx) -> web.Response:
    meta = {
        k[len(META_PREFIX) :].lower(): v
        for k, v in ctx.request.headers.items()
        if k.lower().startswith(META_PREFIX) and len(k) > len(META_PREFIX)
    }
    data, media = await _validated_image(ctx, face_warp=False)
    image_id = await _put(
        ctx,
        blobs_pb2.BlobInput(
            kind=blobs_pb2.BLOB_KIND_IMAGE, content_type=media, data=data, meta=meta
        ),
    )
    return json_response({"image_id": image_id, "url": f"/6/images/{image_id}"}, status=201)


def _image_meta(ctx: Ctx, blob: blobs_pb2.Blob) -> dict[str, str]:
    if not ctx.query.get("with_meta"):
        return {}
    # LUNA sends user metadata back the way it came: one X-Luna-Meta-<key> header per key.
    return {f"X-Luna-Meta-{k}": v for k, v in sorted(blob.meta.items())}


_stored("image", blobs_pb2.BLOB_KIND_IMAGE, _image_meta)


# ---------------------------------------------------------------------------- objects
@table.route(
    "POST", "/6/objects", auth=AuthRule(resource="object", action="creation"), op="createObject"
)
async def create_object(ctx: Ctx) -> web.Response:
    content_type = ctx.request.headers.get("Content-Type", "").strip()
    if not content_type:
        raise errors.LunaError(errors.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
    data = await ctx.request.read()
    if not data:
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    object_id = await _put(
        ctx,
        blobs_pb2.BlobInput(kind=blobs_pb2.BLOB_KIND_OBJECT, content_type=content_type, data=data),
    )
    return json_response({"object_id": object_id, "url": f"/6/objects/{object_id}"}, status=201)


_stored("object", blobs_pb2.BLOB_KIND_OBJECT)


# ---------------------------------------------------------------------------- legacy samples
# LUNA 5.1 split /samples/{id} into /samples/faces/{id} and /samples/bodies/{id} and kept the
# old path as a deprecated alias of the face one; its "previous version" family has the same
# path in the reference, so one set of routes serves both.
def _legacy_sample_id(ctx: Ctx) -> str:
    sample_id = ctx.request.match_info["sample_id"]
    if sample_id in SAMPLE_KINDS:  # /6/samples/faces without an id: only POST exists there
        raise errors.LunaError(errors.METHOD_NOT_ALLOWED, "Method not allowed")
    return sample_id


def _legacy_sample(ctx: Ctx) -> tuple[str, int, str]:
    return "face_sample", blobs_pb2.BLOB_KIND_FACE_SAMPLE, _legacy_sample_id(ctx)


_sample_routes(
    "/6/samples/{sample_id}",
    ("getSampleLegacy", "checkSampleLegacy", "deleteSampleLegacy"),
    _legacy_sample,
)

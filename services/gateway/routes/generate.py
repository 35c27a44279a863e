"""The main LUNA pipeline at the edge: generate events and verifications.

`POST /6/handlers/{handler_id}/events` takes what LUNA does:
- a raw body of any image type (base64 variants included) or of a descriptor type
  (`application/x-sdk-descriptor[-base64]`: packed little-endian float32, the bytes /6/sdk
  returns as `sdk_descriptor`; VisionLabs' XPK container is undocumented and refused);
- multipart/form-data: one image (or descriptor) per part; a JSON part named `policies` carries
  a dynamic handler's policies; a JSON part named `<image part name>.meta` (or `meta_<name>`)
  carries that image's event fields (source, external_id, user_data, tags, location, track_id,
  stream_id, detect_time, image_origin);
- application/json: `{"images": [{"image": <base64>, "mimetype", "filename", <event fields>}],
  "descriptors": [{"descriptor": <base64>, "version", <event fields>}], "policies": {...}}`.
Query parameters give request-wide event fields; `Luna-Event-Time` / `Luna-Event-End-Time`
(RFC 3339; other formats are ignored, as documented) set create_time / end_time.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web
from google.protobuf import struct_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb

from services.common import errors, logs, times
from services.common.pbjson import from_struct
from services.gateway import descriptor_entities, images, jsonbody, multipart
from services.gateway.auth import AuthRule
from services.gateway.images import (
    BASE64_TYPES,
    IMAGE_TYPE,
    IMAGE_TYPES,
    check_body_type,
    media_type,
)
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

DESCRIPTOR_TYPES = ("application/x-sdk-descriptor", "application/x-sdk-descriptor-base64")
XPK_TYPES = ("application/x-vl-xpk", "applicaition/x-vl-xpk-base64", "application/x-vl-xpk-base64")
BODY_TYPES = (
    "application/json",
    "multipart/form-data",
    *IMAGE_TYPES,
    *BASE64_TYPES,
    *DESCRIPTOR_TYPES,
    *XPK_TYPES,
)
META_STRINGS = ("source", "external_id", "user_data", "track_id", "stream_id", "image_origin")
LOCATION_KEYS = ("city", "area", "district", "street", "house_number")
# Auth: token permissions are checked here (emit_events is an object, not an action list).
EMIT_EVENTS = AuthRule()
VERIFY = AuthRule(resource="verifier", action="view")


def check_emit_events(ctx: Ctx, handler_id: str) -> None:
    """A bearer token needs emit_events allowed, and the handler white- (not black-) listed."""
    principal = ctx.principal
    assert principal is not None
    if principal.method != "bearer":
        return
    emit = principal.emit_events
    if not emit or not emit.get("allowed", 1):
        raise errors.LunaError(
            errors.EVENTS_NOT_ALLOWED,
            "Request denied due to token restrictions. Events generation is not allowed",
        )
    white, black = emit.get("white_list") or [], emit.get("black_list") or []
    if (white and handler_id not in white) or handler_id in black:
        raise errors.LunaError(
            errors.HANDLER_NOT_ALLOWED,
            "Request denied due to token restrictions. According to emit_events the handler "
            "is not whitelisted or handler is blacklisted.",
        )


# ---------------------------------------------------------------------------- event fields
def meta_pb(fields: dict[str, Any], path: str) -> ppb.EventMeta:
    """Event fields (query or per-image JSON) -> EventMeta; the events service checks limits."""
    meta = ppb.EventMeta()
    for key in META_STRINGS:
        if fields.get(key) is not None:
            if not isinstance(fields[key], str):
                raise errors.bad_json(f"{path}.{key}", "str type expected")
            setattr(meta, key, fields[key])
    tags = fields.get("tags")
    if tags is not None:
        if isinstance(tags, str):
            tags = [t for t in tags.split(",") if t]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise errors.bad_json(f"{path}.tags", "value is not a valid list")
        meta.tags.extend(tags)
    loc = fields.get("location")
    if loc is None:  # query style: flat keys
        loc = {k: fields[k] for k in (*LOCATION_KEYS, "longitude", "latitude") if k in fields}
    elif not isinstance(loc, dict):
        raise errors.bad_json(f"{path}.location", "value is not a valid dict")
    geo = loc.get("geo_position") or loc
    for key in LOCATION_KEYS:
        if loc.get(key) is not None:
            setattr(meta.location, key, str(loc[key]))
    if geo.get("longitude") is not None and geo.get("latitude") is not None:
        try:
            meta.location.longitude = float(geo["longitude"])
            meta.location.latitude = float(geo["latitude"])
        except (TypeError, ValueError):
            raise errors.bad_json(
                f"{path}.location.geo_position", "value is not a valid float"
            ) from None
    detect_time = fields.get("detect_time") or fields.get("image_ts")
    if detect_time is not None:
        try:
            meta.detect_time.CopyFrom(times.to_timestamp(times.parse_rfc3339(str(detect_time))))
        except ValueError:
            raise errors.bad_json(f"{path}.detect_time", "invalid datetime format") from None
    return meta


def _bad_base64(path: str) -> errors.LunaError:
    return errors.LunaError(errors.BAD_BASE64, "Failed convert data from base64 to bytes")


def _b64(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise errors.bad_json(path, "str type expected")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad_base64(path) from None


def _descriptor(data: bytes, media: str) -> ppb.InputDescriptor:
    if media in XPK_TYPES:
        raise errors.LunaError(errors.XPK_INVALID, "Failed to parse xpk file")
    if media.endswith("-base64"):
        data = base64.b64decode(data) if data else b""
    return ppb.InputDescriptor(descriptor=data)


class Body:
    """What a generate/verify request body holds."""

    def __init__(self) -> None:
        self.items: list[ppb.InputItem] = []
        self.policies: dict[str, Any] | None = None


async def read_body(request: web.Request) -> Body:
    media = media_type(request)
    check_body_type(media, BODY_TYPES)
    body = Body()
    if media == "multipart/form-data":
        await _multipart(request, body)
    elif media == "application/json":
        _json(await request.read(), body)
    elif media in DESCRIPTOR_TYPES or media in XPK_TYPES:
        body.items.append(ppb.InputItem(descriptor=_descriptor(await request.read(), media)))
    else:
        # An empty or broken body is still "an image": the estimator answers it with 18002.
        data = await request.read()
        body.items.append(ppb.InputItem(image=epb.Image(data=data, content_type=media)))
    if not body.items:
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    return body


async def _multipart(request: web.Request, body: Body) -> None:
    metas: dict[str, dict[str, Any]] = {}
    names: list[str] = []
    async for part in multipart.parts(request):
        ptype, data = part.content_type, part.data
        name = part.name or part.filename
        if ptype == "application/json":
            value = jsonbody.loads(data, (name,))
            if name == "policies":
                body.policies = value.get("policies", value) if isinstance(value, dict) else value
            else:
                target = name.removesuffix(".meta").removeprefix("meta_")
                if not isinstance(value, dict):
                    raise errors.bad_json(name, "value is not a valid dict")
                metas[target] = value
        elif images.is_image(ptype):
            body.items.append(ppb.InputItem(image=images.part_image(part)))
            names.append(name)
        elif ptype in DESCRIPTOR_TYPES or ptype in XPK_TYPES:
            body.items.append(ppb.InputItem(descriptor=_descriptor(data, ptype)))
            names.append(name)
        else:
            raise images.bad_part(part)
    for item, name in zip(body.items, names, strict=True):
        if name in metas:
            item.meta.CopyFrom(meta_pb(metas.pop(name), name))
    if metas:
        raise errors.LunaError(
            errors.BAD_INPUT, f"Metadata part '{next(iter(metas))}' names no image part"
        )


def _json(raw: bytes, body: Body) -> None:
    if not raw.strip():
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    doc = jsonbody.loads(raw)
    if not isinstance(doc, dict):
        raise errors.bad_json("", "value is not a valid dict")
    for key in ("images", "descriptors"):
        if key in doc and not isinstance(doc[key], list):
            raise errors.bad_json(key, "value is not a valid list")
    for i, item in enumerate(doc.get("images") or []):
        path = f"images.{i}"
        body.items.append(
            ppb.InputItem(image=images.json_image(item, path), meta=meta_pb(item, path))
        )
    for i, item in enumerate(doc.get("descriptors") or []):
        path = f"descriptors.{i}"
        if not isinstance(item, dict):
            raise errors.bad_json(path, "value is not a valid dict")
        data = _b64(item.get("descriptor"), f"{path}.descriptor")
        version = item.get("version", 0)
        if not isinstance(version, int):
            raise errors.bad_json(f"{path}.version", "value is not a valid integer")
        body.items.append(
            ppb.InputItem(
                descriptor=ppb.InputDescriptor(descriptor=data, version=version),
                meta=meta_pb(item, path),
            )
        )
    if "policies" in doc:
        body.policies = doc["policies"]


def _event_time(request: web.Request, header: str) -> Any:
    raw = request.headers.get(header)
    if not raw:
        return None
    try:
        return times.to_timestamp(times.parse_rfc3339(raw))
    except ValueError:
        return None  # LUNA: "Any other format is ignored."


# ---------------------------------------------------------------------------- routes
@table.route("POST", "/6/handlers/{handler_id}/events", auth=EMIT_EVENTS, op="generateEvents")
async def generate_events(ctx: Ctx) -> web.Response:
    handler_id = ctx.path_id("handler_id")
    check_emit_events(ctx, handler_id)
    q = ctx.query
    body = await read_body(ctx.request)
    req = ppb.GenerateEventsRequest(
        scope=ctx.scope(),
        handler_id=handler_id,
        inputs=body.items,
        image_type=IMAGE_TYPE[q.get("image_type", 0)],
        meta=meta_pb(q, "query"),
        aggregate_attributes=bool(q.get("aggregate_attributes", 0)),
        ignore_exif=not q.get("use_exif_info", 1),
        request_id=logs.request_id.get(),
    )
    for header, attr in (
        ("Luna-Event-Time", "event_time"),
        ("Luna-Event-End-Time", "event_end_time"),
    ):
        ts = _event_time(ctx.request, header)
        if ts is not None:
            getattr(req, attr).CopyFrom(ts)
    if body.policies is not None:
        if not isinstance(body.policies, dict):
            raise errors.bad_json("policies", "value is not a valid dict")
        policies = struct_pb2.Struct()
        policies.update(body.policies)
        req.policies.CopyFrom(policies)
    reply = await ctx.clients.pipeline.GenerateEvents(req)
    return json_response(from_struct(reply.result), status=201)


@table.route("POST", "/6/verifiers/{verifier_id}/verifications", auth=VERIFY, op="verify")
async def verify(ctx: Ctx) -> web.Response:
    verifier_id = ctx.path_id("verifier_id")
    q = ctx.query
    body = await read_body(ctx.request)
    refs = [
        ppb.VerifyReference(image=item.image)
        if item.HasField("image")
        else ppb.VerifyReference(descriptor=item.descriptor)
        for item in body.items
    ]
    reply = await ctx.clients.pipeline.Verify(
        ppb.VerifyRequest(
            scope=ctx.scope(),
            verifier_id=verifier_id,
            references=refs,
            image_type=IMAGE_TYPE[q.get("image_type", 0)],
            face_ids=q.get("face_ids") or [],
            event_ids=q.get("event_ids") or [],
            attribute_ids=q.get("attribute_ids") or [],
            external_ids=q.get("external_ids") or [],
            ignore_exif=not q.get("use_exif_info", 1),
        )
    )
    return json_response(from_struct(reply.result), status=201)


def _raw_entities(body: dict[str, Any], name: str) -> list[ppb.RawEntity]:
    out = []
    for i, e in enumerate(jsonbody.nonempty_array(body, name)):
        path = f"{name}.{i}"
        if not isinstance(e, dict):
            raise errors.bad_json(path, "value is not a valid dict")
        data, version = descriptor_entities.entity_bytes(e, path, bad_base64=_bad_base64)
        out.append(
            ppb.RawEntity(
                id=str(e.get("id") if e.get("id") is not None else i),
                descriptor=ppb.InputDescriptor(descriptor=data, version=version),
            )
        )
    return out


@table.route("POST", "/6/verifiers/{verifier_id}/raw", auth=VERIFY, op="verifyRaw", json_body=True)
async def verify_raw(ctx: Ctx) -> web.Response:
    verifier_id = ctx.path_id("verifier_id")
    body: dict[str, Any] = ctx.body or {}
    reply = await ctx.clients.pipeline.VerifyRaw(
        ppb.VerifyRawRequest(
            scope=ctx.scope(),
            verifier_id=verifier_id,
            references=_raw_entities(body, "references"),
            candidates=_raw_entities(body, "candidates"),
        )
    )
    return json_response(from_struct(reply.result), status=201)

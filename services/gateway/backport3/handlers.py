"""/4/handlers: LUNA 3's extractor, verify and identify handlers and raw batch verification.

The policies live in the backport3 service (one handler of each type per account, versioned);
running a handler is extraction (estimator, faces) followed by matching (matcher).
"""

from __future__ import annotations

from typing import Any

import msgpack
from aiohttp import web
from google.protobuf import json_format, struct_pb2
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import descriptors, errors, times
from services.gateway import jsonbody
from services.gateway.backport3 import extract as ex
from services.gateway.backport3.candidates import (
    list_candidates,
    one_person,
    reference_of,
    run_match,
)
from services.gateway.backport3.core import (
    Caller,
    b64decode,
    bad_content_type,
    caller,
    fail,
    json_body,
    json_response,
    load_json,
    media_type,
    q_flag,
    q_string,
    q_uuid,
    restatus,
)
from services.gateway.backport3.events import record_event
from services.gateway.backport3.persons import get_list, get_person, link_descriptor, link_persons
from services.gateway.backport3.table import Table

table = Table()
TYPES = {
    "extractor": bpb.HANDLER_TYPE_EXTRACTOR,
    "verify": bpb.HANDLER_TYPE_VERIFY,
    "identify": bpb.HANDLER_TYPE_IDENTIFY,
}
# Raw descriptors of every version this platform extracts are compared (LUNA 3 takes a
# version with each raw descriptor); an SDK descriptor is the installation's version.
FLOAT_DESCRIPTOR_VERSIONS = tuple(descriptors.VERSION_DIMS)


async def handler_of(clients: Any, c: Caller, name: str) -> Any:
    reply = await clients.backport3.GetHandler(
        bpb.GetHandlerRequest(account_id=c.account_id, type=TYPES[name])
    )
    return reply.handler


def policies_of(handler: Any) -> dict[str, Any]:
    out = json_format.MessageToDict(handler.policies)
    # Struct holds every number as a double; LUNA's integer policies stay integers.
    for key, value in out.items():
        if isinstance(value, float) and key not in (
            "score_threshold",
            "identify_threshold",
            "verify_threshold",
        ):
            out[key] = int(value)
    return out


def handler_json(handler: Any, name: str) -> dict[str, Any]:
    return {
        "handler_id": handler.handler_id,
        "create_time": times.to_rfc3339(times.from_timestamp(handler.create_time)),
        "last_update_time": times.to_rfc3339(times.from_timestamp(handler.last_update_time)),
        "policies": policies_of(handler),
        "type": name,
        "version": handler.version,
    }


def _get(name: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        c = await caller(request)
        return json_response(handler_json(await handler_of(request.app["clients"], c, name), name))

    return handle


def _patch(name: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        c = await caller(request)
        body = await json_body(request)
        policies = struct_pb2.Struct()
        policies.update(body)
        try:
            reply = await request.app["clients"].backport3.UpdateHandler(
                bpb.UpdateHandlerRequest(
                    account_id=c.account_id, type=TYPES[name], policies=policies
                )
            )
        except errors.LunaError as err:
            # Backport 3 documents an unknown policy list_id under 400.
            raise restatus(err, {errors.LIST_NOT_FOUND: 400}) from None
        return json_response({"version": reply.handler.version})

    return handle


for _name in TYPES:
    table.route("GET", f"/4/handlers/{_name}")(_get(_name))
    table.route("PATCH", f"/4/handlers/{_name}")(_patch(_name))


def _no_faces() -> errors.LunaError:
    # The Backport 3 seed answers a handler's image without faces with code 36005 under 500.
    return fail(errors.WS_DISABLED, "No faces found.", 500)


@table.route("POST", "/4/handlers/extractor")
async def run_extractor(request: web.Request) -> web.Response:
    c = await caller(request)
    user_data = q_string(request, "user_data", 128) or ""
    external_id = q_string(request, "external_id", 36) or ""
    warped = bool(q_flag(request, "warped_image"))
    clients = request.app["clients"]
    handler = await handler_of(clients, c, "extractor")
    policies = policies_of(handler)
    if policies.get("list_id"):
        # Checked before anything is stored: a list deleted since the PATCH fails cleanly.
        await get_list(clients, c, policies["list_id"], status=400)
    opts = ex.Options.from_policies(policies, warped)
    extraction = await ex.extract(
        request,
        c,
        opts,
        best_only=True,
        no_faces=_no_faces(),
    )
    (face,) = extraction.faces
    person = (
        await clients.backport3.CreatePerson(
            bpb.CreatePersonRequest(
                account_id=c.account_id, user_data=user_data, external_id=external_id
            )
        )
    ).person
    person = await link_descriptor(clients, c, person.person_id, face.descriptor_id, True)
    if policies.get("list_id"):
        await link_persons(clients, c, policies["list_id"], [person.person_id], True)
    body = extraction.response(opts, person_id=person.person_id)
    await record_event(
        request, c, "extract", "descriptors",
        result={"faces": [body["face"]], **({"exif": body["exif"]} if "exif" in body else {})},
    )  # fmt: skip
    return json_response(body, 201)


@table.route("POST", "/4/handlers/verify")
async def run_verify(request: web.Request) -> web.Response:
    c = await caller(request)
    person_id = q_uuid(request, "person_id", required=True)
    warped = bool(q_flag(request, "warped_image"))
    clients = request.app["clients"]
    person = await get_person(clients, c, person_id, status=400)
    handler = await handler_of(clients, c, "verify")
    policies = policies_of(handler)
    opts = ex.Options.from_policies(policies, warped)
    extraction = await ex.extract(
        request,
        c,
        opts,
        store=False,
        best_only=True,
        no_faces=_no_faces(),
    )
    (face,) = extraction.faces
    cand = one_person(person, person_id)
    found = await run_match(clients, c, [reference_of(face)], cand, 1)
    await ex.store_after_match(clients, c, extraction)
    threshold = float(policies["verify_threshold"])
    status = bool(found) and found[0]["similarity"] >= threshold
    body = extraction.response(opts, status=status, candidates=found)
    await record_event(
        request, c, "match", "verify", result={"candidates": found},
        template={"descriptor_id": face.descriptor_id}, candidate={"person_id": person_id},
    )  # fmt: skip
    return json_response(body, 201)


@table.route("POST", "/4/handlers/identify")
async def run_identify(request: web.Request) -> web.Response:
    c = await caller(request)
    warped = bool(q_flag(request, "warped_image"))
    clients = request.app["clients"]
    handler = await handler_of(clients, c, "identify")
    policies = policies_of(handler)
    list_id = policies.get("list_id")
    if not list_id:
        raise fail(
            errors.REQUIRED_QUERY_PARAM, "Required parameters 'list_id' not found in policies"
        )
    cand = await list_candidates(clients, c, list_id)
    opts = ex.Options.from_policies(policies, warped)
    extraction = await ex.extract(request, c, opts, store=False, best_only=True)
    (face,) = extraction.faces
    found = await run_match(clients, c, [reference_of(face)], cand, int(policies["limit"]))
    await ex.store_after_match(clients, c, extraction)
    threshold = float(policies["identify_threshold"])
    found = [x for x in found if x["similarity"] >= threshold]
    body = extraction.response(opts, candidates=found)
    await record_event(
        request, c, "match", "identify", result={"candidates": found},
        template={"descriptor_id": face.descriptor_id}, candidate=cand.ws_candidate,
    )  # fmt: skip
    return json_response(body, 201)


# ------------------------------------------------------------------------------ raw verify
def _raw_entities(body: dict[str, Any], key: str, binary: bool) -> list[mpb.RawEntity]:
    out = []
    for i, item in enumerate(jsonbody.nonempty_array(body, key)):
        path = f"{key}.{i}"
        if not isinstance(item, dict) or set(item) != {"id", "type", "data"}:
            raise errors.bad_json(path, "object with id, type and data required")
        if not isinstance(item["id"], str) or len(item["id"]) > 36:
            raise errors.bad_json(f"{path}.id", "string of at most 36 characters required")
        kind, data = item["type"], item["data"]
        if kind == "xpk_file":
            raise fail(errors.XPK_INVALID, "Failed to parse xpk file")
        if kind == "raw_descriptor":
            if not isinstance(data, dict) or set(data) != {"descriptor", "version"}:
                raise errors.bad_json(f"{path}.data", "object with descriptor and version required")
            version = data["version"]
            if type(version) is not int:
                raise errors.bad_json(f"{path}.data.version", "integer required")
            if version not in FLOAT_DESCRIPTOR_VERSIONS:
                raise fail(
                    errors.DESCRIPTOR_VERSION_NOT_REGISTERED,
                    f"Descriptor version {version} are not registered in the system",
                )
            raw = data["descriptor"]
        elif kind == "sdk_descriptor":
            version, raw = ex.installed_version(), data
        else:
            raise errors.bad_json(f"{path}.type", "one of raw_descriptor, sdk_descriptor, xpk_file")
        if isinstance(raw, bytes) and binary:
            vec_bytes = raw
        else:
            try:
                vec_bytes = b64decode(raw)
            except ValueError:
                raise fail(
                    errors.BAD_BASE64, "Failed convert data from base64 to bytes", 400
                ) from None
        descriptor = ex.given_descriptor(vec_bytes, sdk=kind == "sdk_descriptor", version=version)
        out.append(
            mpb.RawEntity(
                id=item["id"],
                descriptor=mpb.RawDescriptor(descriptor=descriptor, version=version),
            )
        )
    return out


@table.route("POST", "/4/handlers/verify/raw")
async def raw_verify(request: web.Request) -> web.Response:
    c = await caller(request)
    media = media_type(request)
    raw = await request.read()
    if media == "application/json":
        body = load_json(raw)
    elif media == "application/msgpack":
        try:
            body = msgpack.unpackb(raw, raw=False)
        except Exception:  # msgpack raises several unrelated types
            raise errors.bad_json("", "request body is not valid msgpack") from None
        jsonbody.check(body)  # the same nesting and NUL limits as JSON
    else:
        raise bad_content_type()
    if not isinstance(body, dict):
        raise errors.bad_json("", "object required")
    binary = media == "application/msgpack"
    references = _raw_entities(body, "references", binary)
    candidates = _raw_entities(body, "candidates", binary)
    clients = request.app["clients"]
    policies = policies_of(await handler_of(clients, c, "verify"))
    threshold = float(policies["verify_threshold"])
    reply = await clients.matcher.MatchRaw(
        mpb.MatchRawRequest(references=references, candidates=candidates)
    )
    matches = []
    for r in reply.results:
        items = sorted(r.matches, key=lambda m: -m.similarity)
        matches.append(
            {
                "reference_id": r.reference_id,
                "matches": [
                    {
                        "candidate_id": m.candidate_id,
                        "similarity": round(m.similarity, 6),
                        "status": m.similarity >= threshold,
                    }
                    for m in items
                ],
            }
        )
    return json_response({"matches": matches})

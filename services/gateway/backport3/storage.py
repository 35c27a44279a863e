"""/4/storage: descriptors (LUNA 5 faces), portraits, persons, lists and the linker.

A person lives in the backport3 service; the faces of its descriptors carry its user_data
and external_id and are members of its persons lists' LUNA 5 lists, so through /6 a person
is the faces of its descriptors, and matching against a persons list is a plain list search.
"""

from __future__ import annotations

import io
from typing import Any

from aiohttp import web
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.faces.v1 import blobs_pb2, faces_pb2, lists_pb2
from PIL import Image

from services.common import errors, ids, times
from services.gateway.backport3 import extract as ex
from services.gateway.backport3.core import (
    Caller,
    body_string,
    body_uuids,
    caller,
    fail,
    json_body,
    json_response,
    no_content,
    only_keys,
    q_do,
    q_page,
    q_string,
    q_uuid,
)
from services.gateway.backport3.events import record_event
from services.gateway.backport3.persons import (
    DESCRIPTORS,
    PERSONS,
    expect_kind,
    face_of,
    get_list,
    get_person,
    link_descriptor,
    link_faces,
    link_persons,
    mirror_person,
    persons_of,
)
from services.gateway.backport3.table import Table

table = Table()
THUMBNAIL_SIZES = (32, 64, 96, 160)


# ------------------------------------------------------------------------------ shared
def person_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.person_id,
        "user_data": p.user_data,
        "create_time": times.to_rfc3339(times.from_timestamp(p.create_time)),
        "external_id": p.external_id,
        "descriptors": list(p.descriptor_ids),
        "lists": list(p.list_ids),
    }


async def descriptor_infos(clients: Any, c: Caller, faces: list[Any]) -> list[dict[str, Any]]:
    owners = await persons_of(clients, c, [f.face_id for f in faces])
    person_lists: dict[str, set[str]] = {}
    for pid in set(owners.values()):
        person_lists[pid] = set((await get_person(clients, c, pid)).list_ids)
    out = []
    for f in faces:
        pid = owners.get(f.face_id)
        # A descriptor's own lists: its face's lists less those it is in through its person.
        lists = [x for x in f.list_ids if x not in person_lists.get(pid or "", set())]
        out.append(
            {
                "id": f.face_id,
                "last_update": times.to_rfc3339(times.from_timestamp(f.last_update_time)),
                "person_id": pid,
                "lists": lists,
            }
        )
    return out


# ------------------------------------------------------------------------------ descriptors
@table.route("POST", "/4/storage/descriptors")
async def create_descriptors(request: web.Request) -> web.Response:
    c = await caller(request)
    opts = ex.Options.from_query(request)
    result = await ex.extract(request, c, opts)
    faces = result.faces_json(opts)
    body: dict[str, Any] = {"faces": faces}
    if result.exif is not None:
        body["exif"] = result.exif
    if opts.extract_descriptor:
        await record_event(
            request, c, "extract", "descriptors", result={"faces": faces, **_exif(body)}
        )
    return json_response(body, 201)


def _exif(body: dict[str, Any]) -> dict[str, Any]:
    return {"exif": body["exif"]} if "exif" in body else {}


@table.route("GET", "/4/storage/descriptors")
async def list_descriptors(request: web.Request) -> web.Response:
    c = await caller(request)
    page, page_size = q_page(request)
    clients = request.app["clients"]
    reply = await clients.faces.ListFaces(
        faces_pb2.ListFacesRequest(
            scope=c.scope,
            filter=faces_pb2.FaceFilter(),
            page={"page": page, "page_size": page_size},
            with_lists=True,
        )
    )
    count = await clients.faces.CountFaces(
        faces_pb2.CountFacesRequest(scope=c.scope, filter=faces_pb2.FaceFilter())
    )
    infos = await descriptor_infos(clients, c, list(reply.faces))
    return json_response({"descriptors": infos, "count": count.count})


async def _descriptor_info(request: web.Request) -> dict[str, Any]:
    c = await caller(request)
    clients = request.app["clients"]
    face = await face_of(clients, c, request.match_info["descriptor_id"])
    (info,) = await descriptor_infos(clients, c, [face])
    return info


@table.route("GET", "/4/storage/descriptors/{descriptor_id}")
async def get_descriptor(request: web.Request) -> web.Response:
    return json_response(await _descriptor_info(request))


@table.route("GET", "/4/storage/descriptors/{descriptor_id}/linked_lists")
async def get_descriptor_lists(request: web.Request) -> web.Response:
    return json_response({"lists": (await _descriptor_info(request))["lists"]})


@table.route("PATCH", "/4/storage/descriptors/{descriptor_id}/linked_lists")
async def patch_descriptor_lists(request: web.Request) -> web.Response:
    c = await caller(request)
    list_id = q_uuid(request, "list_id", required=True)
    attach = q_do(request)
    clients = request.app["clients"]
    face = await face_of(clients, c, request.match_info["descriptor_id"])
    lst = await get_list(clients, c, list_id)
    expect_kind(lst, DESCRIPTORS)
    await link_faces(clients, c, [list_id], [face.face_id], attach)
    if not attach:
        await ex.track(clients, c, [face.face_id])
    return no_content()


# ------------------------------------------------------------------------------ portraits
@table.route("GET", "/4/storage/portraits/{portrait_id}")
async def get_portrait(request: web.Request) -> web.Response:
    c = await caller(request)
    if not ex.PORTRAITS.get_bool():
        raise fail(errors.PORTRAITS_DISABLED, "Luna Image Store service is disabled")
    raw = request.match_info["portrait_id"]
    descriptor_id, _, size_text = raw.partition("_")
    size = 0
    if size_text:
        if not size_text.isdigit() or int(size_text) not in THUMBNAIL_SIZES:
            raise fail(errors.IMAGE_NOT_FOUND, f"Image with id '{raw}' not found")
        size = int(size_text)
    not_found = fail(errors.IMAGE_NOT_FOUND, f"Image with id '{raw}' not found")
    if not ids.is_uuid(descriptor_id):
        raise not_found
    clients = request.app["clients"]
    try:
        attr = await clients.faces.GetFaceAttribute(
            faces_pb2.GetFaceAttributeRequest(scope=c.scope, face_id=descriptor_id)
        )
    except errors.LunaError:
        raise not_found from None
    samples = list(attr.attribute.data.descriptor_samples)
    if not samples:
        raise not_found
    try:
        blob = await clients.blobs.GetBlob(
            blobs_pb2.GetBlobRequest(
                scope=c.scope, kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE, blob_id=samples[0]
            )
        )
    except errors.LunaError:
        raise not_found from None
    data = blob.blob.data
    if size:
        img = Image.open(io.BytesIO(data)).convert("RGB")
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
    elif blob.blob.content_type != "image/jpeg":
        buf = io.BytesIO()
        Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="JPEG", quality=95)
        data = buf.getvalue()
    return web.Response(body=data, content_type="image/jpeg")


# ------------------------------------------------------------------------------ persons
def _person_fields(body: dict[str, Any]) -> tuple[str | None, str | None]:
    only_keys(body, {"user_data", "external_id"})
    return body_string(body, "user_data", 128), body_string(body, "external_id", 36)


@table.route("POST", "/4/storage/persons")
async def create_person(request: web.Request) -> web.Response:
    c = await caller(request)
    user_data, external_id = _person_fields(await json_body(request, required=False))
    reply = await request.app["clients"].backport3.CreatePerson(
        bpb.CreatePersonRequest(
            account_id=c.account_id, user_data=user_data or "", external_id=external_id or ""
        )
    )
    return json_response({"person_id": reply.person.person_id}, 201)


@table.route("GET", "/4/storage/persons")
async def list_persons(request: web.Request) -> web.Response:
    c = await caller(request)
    page, page_size = q_page(request)
    req = bpb.ListPersonsRequest(
        account_id=c.account_id, page={"page": page, "page_size": page_size}
    )
    user_data = q_string(request, "user_data", 128)
    external_id = q_string(request, "external_id", 36)
    if user_data is not None:
        req.user_data = user_data
    if external_id is not None:
        req.external_id = external_id
    reply = await request.app["clients"].backport3.ListPersons(req)
    return json_response({"persons": [person_json(p) for p in reply.persons], "count": reply.count})


async def _path_person(request: web.Request) -> Any:
    c = await caller(request)
    return await get_person(request.app["clients"], c, request.match_info["person_id"])


@table.route("GET", "/4/storage/persons/{person_id}")
async def get_person_route(request: web.Request) -> web.Response:
    return json_response(person_json(await _path_person(request)))


@table.route("PATCH", "/4/storage/persons/{person_id}")
async def patch_person(request: web.Request) -> web.Response:
    c = await caller(request)
    user_data, external_id = _person_fields(await json_body(request))
    if user_data is None and external_id is None:
        raise errors.bad_json("", "Required user data or external id in body")
    clients = request.app["clients"]
    req = bpb.UpdatePersonRequest(
        account_id=c.account_id, person_id=request.match_info["person_id"]
    )
    if user_data is not None:
        req.user_data = user_data
    if external_id is not None:
        req.external_id = external_id
    p = (await clients.backport3.UpdatePerson(req)).person
    await mirror_person(clients, c, list(p.descriptor_ids), p)
    return no_content()


@table.route("DELETE", "/4/storage/persons/{person_id}")
async def delete_person(request: web.Request) -> web.Response:
    c = await caller(request)
    clients = request.app["clients"]
    p = (
        await clients.backport3.DeletePerson(
            bpb.DeletePersonRequest(
                account_id=c.account_id, person_id=request.match_info["person_id"]
            )
        )
    ).person
    faces = list(p.descriptor_ids)
    await link_faces(clients, c, list(p.list_ids), faces, attach=False)
    await mirror_person(clients, c, faces, None)
    await ex.track(clients, c, faces)
    return no_content()


@table.route("GET", "/4/storage/persons/{person_id}/linked_descriptors")
async def person_descriptors(request: web.Request) -> web.Response:
    return json_response({"descriptors": list((await _path_person(request)).descriptor_ids)})


@table.route("PATCH", "/4/storage/persons/{person_id}/linked_descriptors")
async def patch_person_descriptors(request: web.Request) -> web.Response:
    c = await caller(request)
    person_id = request.match_info["person_id"]
    raw = request.query.get("descriptor_id")
    if not raw:
        raise fail(errors.REQUIRED_QUERY_PARAM, "Required parameters 'descriptor_id' not found")
    attach = q_do(request)
    clients = request.app["clients"]
    await get_person(clients, c, person_id)
    # Backport 3 answers an unknown descriptor here with 400, not 404.
    face = await face_of(clients, c, raw, status=400)
    await link_descriptor(clients, c, person_id, face.face_id, attach)
    if not attach:
        await ex.track(clients, c, [face.face_id])
    return no_content()


@table.route("GET", "/4/storage/persons/{person_id}/linked_lists")
async def person_lists(request: web.Request) -> web.Response:
    return json_response({"lists": list((await _path_person(request)).list_ids)})


@table.route("PATCH", "/4/storage/persons/{person_id}/linked_lists")
async def patch_person_lists(request: web.Request) -> web.Response:
    c = await caller(request)
    list_id = q_uuid(request, "list_id", required=True)
    attach = q_do(request)
    clients = request.app["clients"]
    person_id = request.match_info["person_id"]
    await get_person(clients, c, person_id)
    await link_persons(clients, c, list_id, [person_id], attach)
    return no_content()


# ------------------------------------------------------------------------------ lists
def _list_data(body: dict[str, Any], *, required: bool) -> str | None:
    only_keys(body, {"list_data"})
    return body_string(body, "list_data", 128, required=required)


@table.route("POST", "/4/storage/lists")
async def create_list(request: web.Request) -> web.Response:
    c = await caller(request)
    kind_name = request.query.get("type", "persons")
    if kind_name not in ("persons", "descriptors"):
        raise errors.bad_query("type")
    list_data = _list_data(await json_body(request, required=False), required=False) or ""
    clients = request.app["clients"]
    created = await clients.lists.CreateList(
        lists_pb2.CreateListRequest(scope=c.scope, user_data=list_data)
    )
    list_id = created.list.list_id
    await clients.backport3.CreateList(
        bpb.CreateListRequest(
            account_id=c.account_id,
            list_id=list_id,
            kind=PERSONS if kind_name == "persons" else DESCRIPTORS,
            list_data=list_data,
        )
    )
    return json_response({"list_id": list_id}, 201)


async def _list_count(clients: Any, c: Caller, lst: Any) -> int:
    if lst.kind == PERSONS:
        reply = await clients.backport3.ListPersons(
            bpb.ListPersonsRequest(
                account_id=c.account_id, list_id=lst.list_id, page={"page": 1, "page_size": 1}
            )
        )
        return int(reply.count)
    reply = await clients.faces.CountFaces(
        faces_pb2.CountFacesRequest(scope=c.scope, filter=faces_pb2.FaceFilter(list_id=lst.list_id))
    )
    return int(reply.count)


@table.route("GET", "/4/storage/lists")
async def list_lists(request: web.Request) -> web.Response:
    c = await caller(request)
    page, page_size = q_page(request)
    clients = request.app["clients"]
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for kind, key in ((PERSONS, "person_lists"), (DESCRIPTORS, "descriptor_lists")):
        # LUNA 3 pages each kind separately.
        reply = await clients.backport3.ListLists(
            bpb.ListListsRequest(
                account_id=c.account_id, kind=kind, page={"page": page, "page_size": page_size}
            )
        )
        out[key] = [
            {"list_data": x.list_data, "count": await _list_count(clients, c, x), "id": x.list_id}
            for x in reply.lists
        ]
        counts[key] = int(reply.count)
    return json_response(
        {
            "lists": out,
            "persons_list_count": counts["person_lists"],
            "descriptors_list_count": counts["descriptor_lists"],
        }
    )


async def _delete_lists(clients: Any, c: Caller, list_ids: list[str]) -> None:
    # Checked first in the backport3 service (22003 for any unknown one) so nothing is
    # deleted unless all of them can be.
    await clients.backport3.GetLists(
        bpb.GetListsRequest(account_id=c.account_id, list_ids=list_ids)
    )
    await clients.lists.DeleteLists(lists_pb2.DeleteListsRequest(scope=c.scope, list_ids=list_ids))
    await clients.backport3.DeleteLists(
        bpb.DeleteListsRequest(account_id=c.account_id, list_ids=list_ids)
    )


@table.route("DELETE", "/4/storage/lists")
async def delete_lists(request: web.Request) -> web.Response:
    c = await caller(request)
    body = await json_body(request)
    only_keys(body, {"lists"})
    await _delete_lists(request.app["clients"], c, body_uuids(body, "lists"))
    return no_content()


@table.route("GET", "/4/storage/lists/{list_id}")
async def get_list_route(request: web.Request) -> web.Response:
    c = await caller(request)
    page, page_size = q_page(request)
    clients = request.app["clients"]
    lst = await get_list(clients, c, request.match_info["list_id"])
    if lst.kind == PERSONS:
        reply = await clients.backport3.ListPersons(
            bpb.ListPersonsRequest(
                account_id=c.account_id,
                list_id=lst.list_id,
                page={"page": page, "page_size": page_size},
            )
        )
        return json_response(
            {
                "persons": [person_json(p) for p in reply.persons],
                "list_data": lst.list_data,
                "count": reply.count,
            }
        )
    faces = await clients.faces.ListFaces(
        faces_pb2.ListFacesRequest(
            scope=c.scope,
            filter=faces_pb2.FaceFilter(list_id=lst.list_id),
            page={"page": page, "page_size": page_size},
        )
    )
    owners = await persons_of(clients, c, [f.face_id for f in faces.faces])
    return json_response(
        {
            "descriptors": [
                {
                    "id": f.face_id,
                    "last_update": times.to_rfc3339(times.from_timestamp(f.last_update_time)),
                    "person_id": owners.get(f.face_id),
                }
                for f in faces.faces
            ],
            "list_data": lst.list_data,
            "count": await _list_count(clients, c, lst),
        }
    )


@table.route("PATCH", "/4/storage/lists/{list_id}")
async def patch_list(request: web.Request) -> web.Response:
    c = await caller(request)
    list_data = _list_data(await json_body(request), required=True)
    clients = request.app["clients"]
    list_id = request.match_info["list_id"]
    await clients.backport3.UpdateList(
        bpb.UpdateListRequest(account_id=c.account_id, list_id=list_id, list_data=list_data)
    )
    await clients.lists.UpdateList(
        lists_pb2.UpdateListRequest(scope=c.scope, list_id=list_id, user_data=list_data)
    )
    return no_content()


@table.route("DELETE", "/4/storage/lists/{list_id}")
async def delete_list(request: web.Request) -> web.Response:
    c = await caller(request)
    list_id = request.match_info["list_id"]
    if not ids.is_uuid(list_id):
        raise fail(errors.LIST_NOT_FOUND, f"List with id '{list_id}' not found")
    await _delete_lists(request.app["clients"], c, [list_id])
    return no_content()


@table.route("PATCH", "/4/storage/linker")
async def linker(request: web.Request) -> web.Response:
    c = await caller(request)
    body = await json_body(request)
    action = body.get("action")
    if action not in ("attach", "detach"):
        raise errors.bad_json("action", "one of attach, detach required")
    list_id = body.get("list_id")
    if not isinstance(list_id, str) or not ids.is_uuid(list_id):
        raise errors.bad_json("list_id", "uuid4 required")
    has_d, has_p = "descriptor_ids" in body, "person_ids" in body
    if has_d == has_p:
        raise errors.bad_json("", "exactly one of descriptor_ids, person_ids required")
    only_keys(body, {"action", "list_id", "descriptor_ids" if has_d else "person_ids"})
    attach = action == "attach"
    clients = request.app["clients"]
    if has_p:
        await link_persons(clients, c, list_id, body_uuids(body, "person_ids"), attach)
        return no_content()
    descriptor_ids = body_uuids(body, "descriptor_ids")
    lst = await get_list(clients, c, list_id)
    expect_kind(lst, DESCRIPTORS)
    try:
        await link_faces(clients, c, [list_id], descriptor_ids, attach)
    except errors.LunaError as err:
        if err.code == errors.FACES_NOT_FOUND:
            raise fail(errors.OBJECTS_NOT_FOUND, "One or more descriptor not found", 400) from None
        raise
    if not attach:
        await ex.track(clients, c, descriptor_ids)
    return no_content()

"""The persons, lists and descriptors the /4 routes look up and link.

A person lives in the backport3 service; the faces of its descriptors carry its user_data
and external_id and are members of its persons lists' LUNA 5 lists.
"""

from __future__ import annotations

from typing import Any

from luna.backport3.v1 import backport3_pb2 as bpb
from luna.faces.v1 import faces_pb2, lists_pb2

from services.common import errors, ids
from services.gateway.backport3.core import Caller, descriptor_not_found, fail, restatus

DESCRIPTORS, PERSONS = bpb.LIST_KIND_DESCRIPTORS, bpb.LIST_KIND_PERSONS


async def face_of(clients: Any, c: Caller, descriptor_id: str, status: int = 404) -> Any:
    """The LUNA 5 face of a descriptor (11018 with `status` when it is not the caller's)."""
    if not ids.is_uuid(descriptor_id):
        raise descriptor_not_found(descriptor_id, status)
    try:
        reply = await clients.faces.GetFace(
            faces_pb2.GetFaceRequest(scope=c.scope, face_id=descriptor_id, with_lists=True)
        )
    except errors.LunaError as err:
        if err.code == errors.FACE_NOT_FOUND:
            raise descriptor_not_found(descriptor_id, status) from None
        raise
    return reply.face


async def get_person(clients: Any, c: Caller, person_id: str, status: int = 404) -> Any:
    try:
        reply = await clients.backport3.GetPerson(
            bpb.GetPersonRequest(account_id=c.account_id, person_id=person_id)
        )
    except errors.LunaError as err:
        raise restatus(err, {errors.PERSON_NOT_FOUND: status}) from None
    return reply.person


async def get_list(clients: Any, c: Caller, list_id: str, status: int = 404) -> Any:
    try:
        reply = await clients.backport3.GetLists(
            bpb.GetListsRequest(account_id=c.account_id, list_ids=[list_id])
        )
    except errors.LunaError as err:
        raise restatus(err, {errors.LIST_NOT_FOUND: status}) from None
    return reply.lists[0]


def expect_kind(lst: Any, want: int) -> None:
    """36001 when an operation for one kind of list is given the other kind."""
    if lst.kind == want:
        return
    if want == PERSONS:
        detail = f"Expected list of persons. Got list of descriptors. List id '{lst.list_id}'"
    else:
        detail = f"Expected list of descriptors. Got list of persons. List id '{lst.list_id}'"
    raise fail(errors.NOT_PERSONS_LIST, detail)


async def mirror_person(clients: Any, c: Caller, face_ids: list[str], p: Any | None) -> None:
    """Give the faces the person's user_data/external_id (or clear them when p is None)."""
    for face_id in face_ids:
        await clients.faces.UpdateFace(
            faces_pb2.UpdateFaceRequest(
                scope=c.scope,
                face_id=face_id,
                user_data=p.user_data if p is not None else "",
                external_id=p.external_id if p is not None else "",
            )
        )


async def link_faces(
    clients: Any, c: Caller, list_ids: list[str], face_ids: list[str], attach: bool
) -> None:
    if not face_ids:
        return
    for list_id in list_ids:
        if attach:
            await clients.lists.AttachFaces(
                lists_pb2.AttachFacesRequest(scope=c.scope, list_id=list_id, face_ids=face_ids)
            )
        else:
            await clients.lists.DetachFaces(
                lists_pb2.DetachFacesRequest(scope=c.scope, list_id=list_id, face_ids=face_ids)
            )


async def link_descriptor(
    clients: Any, c: Caller, person_id: str, descriptor_id: str, attach: bool
) -> Any:
    """Attach a descriptor to a person (or detach it): its face joins (leaves) the person's
    lists and takes (drops) the person's user_data and external_id. The person after."""
    p = (
        await clients.backport3.LinkDescriptor(
            bpb.LinkDescriptorRequest(
                account_id=c.account_id,
                person_id=person_id,
                descriptor_id=descriptor_id,
                attach=attach,
            )
        )
    ).person
    await link_faces(clients, c, list(p.list_ids), [descriptor_id], attach)
    await mirror_person(clients, c, [descriptor_id], p if attach else None)
    return p


async def link_persons(
    clients: Any, c: Caller, list_id: str, person_ids: list[str], attach: bool
) -> None:
    persons = (
        await clients.backport3.LinkPersonsToList(
            bpb.LinkPersonsToListRequest(
                account_id=c.account_id, list_id=list_id, person_ids=person_ids, attach=attach
            )
        )
    ).persons
    faces = [d for p in persons for d in p.descriptor_ids]
    await link_faces(clients, c, [list_id], faces, attach)


async def persons_of(clients: Any, c: Caller, descriptor_ids: list[str]) -> dict[str, str]:
    if not descriptor_ids:
        return {}
    reply = await clients.backport3.PersonsOfDescriptors(
        bpb.PersonsOfDescriptorsRequest(account_id=c.account_id, descriptor_ids=descriptor_ids)
    )
    return dict(reply.person_ids)

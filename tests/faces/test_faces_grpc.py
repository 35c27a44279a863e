"""The faces servicers over real gRPC: LUNA errors arrive in the trailer, descriptors stream,
and protobuf input is validated before anything is written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
from luna.common.v1 import account_pb2, error_pb2
from luna.faces.v1 import (
    attributes_pb2,
    attributes_pb2_grpc,
    faces_pb2,
    faces_pb2_grpc,
    lists_pb2,
    lists_pb2_grpc,
)

from services.common import errors
from services.common.grpc_server import ErrorInterceptor
from services.faces.grpc_service import AttributesServicer, FacesServicer, ListsServicer

from .conftest import World


@pytest.fixture
async def channel(world: World) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    faces_pb2_grpc.add_FacesServiceServicer_to_server(FacesServicer(world.faces), server)
    lists_pb2_grpc.add_ListsServiceServicer_to_server(ListsServicer(world.lists), server)
    attributes_pb2_grpc.add_AttributesServiceServicer_to_server(
        AttributesServicer(world.attributes), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    await server.stop(None)


def luna_code(exc: grpc.aio.AioRpcError) -> int:
    for key, value in exc.trailing_metadata() or ():
        if key == errors.ERROR_TRAILER:
            return error_pb2.ErrorDetail.FromString(value).error_code
    raise AssertionError("no LUNA error trailer")


def descriptor(seed: int) -> attributes_pb2.Descriptor:
    vec = np.random.default_rng(seed).standard_normal(128).astype("<f4").tobytes()
    return attributes_pb2.Descriptor(descriptor=vec, version=200)


async def test_faces_lists_attributes_over_grpc(world: World, channel: grpc.aio.Channel) -> None:
    faces = faces_pb2_grpc.FacesServiceStub(channel)
    lists = lists_pb2_grpc.ListsServiceStub(channel)
    attrs = attributes_pb2_grpc.AttributesServiceStub(channel)
    scope = account_pb2.AccountScope(account_id=world.a.account_id)
    lst = (await lists.CreateList(lists_pb2.CreateListRequest(scope=scope, user_data="L"))).list
    attr = (
        await attrs.CreateAttribute(
            attributes_pb2.CreateAttributeRequest(
                scope=scope,
                data=attributes_pb2.AttributeData(descriptors=[descriptor(1)]),
                ttl_seconds=60,
            )
        )
    ).attribute
    face = (
        await faces.CreateFace(
            faces_pb2.CreateFaceRequest(
                scope=scope,
                user_data="u",
                attribute=faces_pb2.FaceAttributeInput(attribute_id=attr.attribute_id),
                list_ids=[lst.list_id],
            )
        )
    ).face
    assert face.has_attribute and list(face.list_ids) == [lst.list_id]
    listed = await faces.ListFaces(
        faces_pb2.ListFacesRequest(
            scope=scope, filter=faces_pb2.FaceFilter(list_id=lst.list_id), with_lists=True
        )
    )
    assert [f.face_id for f in listed.faces] == [face.face_id]
    matcher_scope = account_pb2.AccountScope(account_id=world.a.account_id, see_all=True)
    batches = [
        b
        async for b in faces.StreamDescriptors(
            faces_pb2.StreamDescriptorsRequest(scope=matcher_scope, list_ids=[lst.list_id])
        )
    ]
    items = [d for b in batches for d in b.descriptors]
    assert [(d.face_id, d.version, list(d.list_ids)) for d in items] == [
        (face.face_id, 200, [lst.list_id])
    ]
    assert items[0].descriptor == attr.data.descriptors[0].descriptor

    other = account_pb2.AccountScope(account_id=world.b.account_id)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await faces.GetFace(faces_pb2.GetFaceRequest(scope=other, face_id=face.face_id))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and luna_code(info.value) == 22002
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await lists.AttachFaces(
            lists_pb2.AttachFacesRequest(scope=other, list_id=lst.list_id, face_ids=[face.face_id])
        )
    assert luna_code(info.value) == 22003
    # A bad descriptor is refused before anything is written.
    bad = attributes_pb2.Descriptor(descriptor=b"\x00" * 6, version=200)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await faces.CreateFace(
            faces_pb2.CreateFaceRequest(
                scope=scope,
                attribute=faces_pb2.FaceAttributeInput(
                    data=attributes_pb2.AttributeData(descriptors=[bad])
                ),
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and luna_code(info.value) == 12034
    count = await faces.CountFaces(faces_pb2.CountFacesRequest(scope=scope))
    assert count.count == 1


async def test_stream_face_ids_is_one_ascending_scan_of_the_filter(
    world: World, channel: grpc.aio.Channel
) -> None:
    faces = faces_pb2_grpc.FacesServiceStub(channel)
    lst = await world.lists.create(world.a)
    made = [await world.faces.create(world.a, list_ids=[lst.list_id]) for _ in range(5)]
    await world.faces.create(world.a)  # not in the list
    await world.faces.create(world.b, list_ids=[])  # another account's

    async def stream(scope: account_pb2.AccountScope, **flt: str) -> list[list[str]]:
        request = faces_pb2.StreamFaceIdsRequest(
            scope=scope, filter=faces_pb2.FaceFilter(**flt), batch_size=2
        )
        return [list(b.face_ids) async for b in faces.StreamFaceIds(request)]

    a = account_pb2.AccountScope(account_id=world.a.account_id)
    got = await stream(a, list_id=lst.list_id)
    assert [len(b) for b in got] == [2, 2, 1]
    assert [f for b in got for f in b] == sorted(f.face_id for f in made)
    assert len([f for b in await stream(a) for f in b]) == 6
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream(a, face_id_gte="not-an-id")
    assert luna_code(info.value) == errors.BAD_QUERY_PARAM

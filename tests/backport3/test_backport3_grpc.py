"""The backport3 servicer over real gRPC: protobuf in and out, LUNA errors in the trailer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import struct_pb2
from luna.backport3.v1 import backport3_pb2 as pb
from luna.backport3.v1 import backport3_pb2_grpc
from luna.common.v1 import error_pb2

from services.backport3.grpc_service import Backport3Servicer
from services.backport3.store import Store
from services.common import errors
from services.common.grpc_server import ErrorInterceptor


@pytest.fixture
async def stub(store: Store) -> AsyncIterator[backport3_pb2_grpc.Backport3ServiceStub]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    backport3_pb2_grpc.add_Backport3ServiceServicer_to_server(
        Backport3Servicer(store, 86400.0), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield backport3_pb2_grpc.Backport3ServiceStub(ch)
    await server.stop(None)


def luna_error(exc: grpc.aio.AioRpcError) -> error_pb2.ErrorDetail:
    for key, value in exc.trailing_metadata() or ():
        if key == errors.ERROR_TRAILER:
            return error_pb2.ErrorDetail.FromString(value)
    raise AssertionError("no LUNA error trailer")


async def test_round_trip_and_errors(stub: backport3_pb2_grpc.Backport3ServiceStub) -> None:
    acc = str(uuid.uuid4())
    made = await stub.CreateAccount(
        pb.CreateAccountRequest(account_id=acc, email="g@example.com", organization_name="O")
    )
    assert made.account.account_id == acc and uuid.UUID(made.token.token_id).version == 4
    verified = await stub.VerifyToken(pb.VerifyTokenRequest(token_id=made.token.token_id))
    assert verified.account.email == "g@example.com"

    person = (await stub.CreatePerson(pb.CreatePersonRequest(account_id=acc, user_data="u"))).person
    d = str(uuid.uuid4())
    got = await stub.LinkDescriptor(
        pb.LinkDescriptorRequest(
            account_id=acc, person_id=person.person_id, descriptor_id=d, attach=True
        )
    )
    assert list(got.person.descriptor_ids) == [d]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.LinkDescriptor(
            pb.LinkDescriptorRequest(
                account_id=acc, person_id=person.person_id, descriptor_id=d, attach=True
            )
        )
    detail = luna_error(info.value)
    assert (detail.error_code, detail.http_status) == (22008, 409)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    owners = await stub.PersonsOfDescriptors(
        pb.PersonsOfDescriptorsRequest(account_id=acc, descriptor_ids=[d])
    )
    assert dict(owners.person_ids) == {d: person.person_id}

    policies = struct_pb2.Struct()
    policies.update({"verify_threshold": 0.7})
    h = await stub.UpdateHandler(
        pb.UpdateHandlerRequest(account_id=acc, type=pb.HANDLER_TYPE_VERIFY, policies=policies)
    )
    assert h.handler.version == 2 and h.handler.policies["verify_threshold"] == 0.7
    policies.update({"verify_threshold": 7})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UpdateHandler(
            pb.UpdateHandlerRequest(account_id=acc, type=pb.HANDLER_TYPE_VERIFY, policies=policies)
        )
    assert luna_error(info.value).error_code == 12022

"""gRPC adapter of the Backport 3 store: protobuf in, one store call, protobuf out."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from luna.backport3.v1 import backport3_pb2 as pb
from luna.backport3.v1 import backport3_pb2_grpc

from services.backport3.store import Row, Store
from services.common import times

Ctx = grpc.aio.ServicerContext


def _page(page: Any) -> tuple[int, int]:
    return page.page, page.page_size


def _message(cls: Any, row: Row, fields: tuple[str, ...], **extra: Any) -> Any:
    """A message of `cls` from the row's `fields`, its create_time and `extra`."""
    return cls(
        **{f: row[f] for f in fields},
        create_time=times.to_timestamp(row["create_time"]),
        **extra,
    )


def account_pb(row: Row) -> pb.Account:
    return _message(pb.Account, row, ("account_id", "email", "organization_name", "suspended"))


def token_pb(row: Row) -> pb.Token:
    return _message(pb.Token, row, ("token_id", "account_id", "token_data"))


def person_pb(row: Row) -> pb.Person:
    fields = ("person_id", "account_id", "user_data", "external_id", "descriptor_ids", "list_ids")
    return _message(pb.Person, row, fields)


def list_pb(row: Row) -> pb.List:
    return _message(pb.List, row, ("list_id", "account_id", "kind", "list_data"))


def handler_pb(row: Row) -> pb.Handler:
    policies = struct_pb2.Struct()
    policies.update(row["policies"])
    return _message(
        pb.Handler,
        row,
        ("handler_id", "account_id", "type", "version"),
        policies=policies,
        last_update_time=times.to_timestamp(row["last_update_time"]),
    )


class Backport3Servicer(backport3_pb2_grpc.Backport3ServiceServicer):
    def __init__(self, store: Store, descriptor_ttl_s: float) -> None:
        self.store = store
        self.descriptor_ttl_s = descriptor_ttl_s

    async def CreateAccount(self, request: Any, context: Ctx) -> pb.CreateAccountResponse:
        account, token = await self.store.create_account(
            request.account_id, request.email, request.organization_name
        )
        return pb.CreateAccountResponse(account=account_pb(account), token=token_pb(token))

    async def GetAccount(self, request: Any, context: Ctx) -> pb.GetAccountResponse:
        return pb.GetAccountResponse(
            account=account_pb(await self.store.get_account(request.account_id))
        )

    async def CreateToken(self, request: Any, context: Ctx) -> pb.CreateTokenResponse:
        row = await self.store.create_token(request.account_id, request.token_data)
        return pb.CreateTokenResponse(token=token_pb(row))

    async def ListTokens(self, request: Any, context: Ctx) -> pb.ListTokensResponse:
        rows, count = await self.store.list_tokens(request.account_id, *_page(request.page))
        return pb.ListTokensResponse(tokens=[token_pb(r) for r in rows], count=count)

    async def GetToken(self, request: Any, context: Ctx) -> pb.GetTokenResponse:
        row = await self.store.get_token(request.account_id, request.token_id)
        return pb.GetTokenResponse(token=token_pb(row))

    async def UpdateToken(self, request: Any, context: Ctx) -> pb.UpdateTokenResponse:
        row = await self.store.update_token(
            request.account_id, request.token_id, request.token_data
        )
        return pb.UpdateTokenResponse(token=token_pb(row))

    async def DeleteTokens(self, request: Any, context: Ctx) -> pb.DeleteTokensResponse:
        await self.store.delete_tokens(request.account_id, list(request.token_ids))
        return pb.DeleteTokensResponse()

    async def VerifyToken(self, request: Any, context: Ctx) -> pb.VerifyTokenResponse:
        token, account = await self.store.verify_token(request.token_id)
        return pb.VerifyTokenResponse(token=token_pb(token), account=account_pb(account))

    async def CreatePerson(self, request: Any, context: Ctx) -> pb.CreatePersonResponse:
        row = await self.store.create_person(
            request.account_id, request.user_data, request.external_id
        )
        return pb.CreatePersonResponse(person=person_pb(row))

    async def GetPerson(self, request: Any, context: Ctx) -> pb.GetPersonResponse:
        row = await self.store.get_person(request.account_id, request.person_id)
        return pb.GetPersonResponse(person=person_pb(row))

    async def ListPersons(self, request: Any, context: Ctx) -> pb.ListPersonsResponse:
        rows, count = await self.store.list_persons(
            request.account_id,
            user_data=request.user_data if request.HasField("user_data") else None,
            external_id=request.external_id if request.HasField("external_id") else None,
            list_id=request.list_id,
            person_ids=list(request.person_ids),
            page=request.page.page,
            page_size=request.page.page_size,
        )
        return pb.ListPersonsResponse(persons=[person_pb(r) for r in rows], count=count)

    async def UpdatePerson(self, request: Any, context: Ctx) -> pb.UpdatePersonResponse:
        row = await self.store.update_person(
            request.account_id,
            request.person_id,
            request.user_data if request.HasField("user_data") else None,
            request.external_id if request.HasField("external_id") else None,
        )
        return pb.UpdatePersonResponse(person=person_pb(row))

    async def DeletePerson(self, request: Any, context: Ctx) -> pb.DeletePersonResponse:
        row = await self.store.delete_person(request.account_id, request.person_id)
        return pb.DeletePersonResponse(person=person_pb(row))

    async def LinkDescriptor(self, request: Any, context: Ctx) -> pb.LinkDescriptorResponse:
        row = await self.store.link_descriptor(
            request.account_id, request.person_id, request.descriptor_id, request.attach
        )
        return pb.LinkDescriptorResponse(person=person_pb(row))

    async def LinkPersonsToList(self, request: Any, context: Ctx) -> pb.LinkPersonsToListResponse:
        rows = await self.store.link_persons_to_list(
            request.account_id, request.list_id, list(request.person_ids), request.attach
        )
        return pb.LinkPersonsToListResponse(persons=[person_pb(r) for r in rows])

    async def PersonsOfDescriptors(
        self, request: Any, context: Ctx
    ) -> pb.PersonsOfDescriptorsResponse:
        mapping = await self.store.persons_of_descriptors(
            request.account_id, list(request.descriptor_ids)
        )
        return pb.PersonsOfDescriptorsResponse(person_ids=mapping)

    async def CreateList(self, request: Any, context: Ctx) -> pb.CreateListResponse:
        row = await self.store.create_list(
            request.account_id, request.list_id, request.kind, request.list_data
        )
        return pb.CreateListResponse(list=list_pb(row))

    async def GetLists(self, request: Any, context: Ctx) -> pb.GetListsResponse:
        rows = await self.store.get_lists(request.account_id, list(request.list_ids))
        return pb.GetListsResponse(lists=[list_pb(r) for r in rows])

    async def ListLists(self, request: Any, context: Ctx) -> pb.ListListsResponse:
        rows, count = await self.store.list_lists(
            request.account_id, request.kind, *_page(request.page)
        )
        return pb.ListListsResponse(lists=[list_pb(r) for r in rows], count=count)

    async def UpdateList(self, request: Any, context: Ctx) -> pb.UpdateListResponse:
        row = await self.store.update_list(request.account_id, request.list_id, request.list_data)
        return pb.UpdateListResponse(list=list_pb(row))

    async def DeleteLists(self, request: Any, context: Ctx) -> pb.DeleteListsResponse:
        await self.store.delete_lists(request.account_id, list(request.list_ids))
        return pb.DeleteListsResponse()

    async def TrackDescriptors(self, request: Any, context: Ctx) -> pb.TrackDescriptorsResponse:
        await self.store.track_descriptors(
            request.account_id, list(request.descriptor_ids), self.descriptor_ttl_s
        )
        return pb.TrackDescriptorsResponse()

    async def GetHandler(self, request: Any, context: Ctx) -> pb.GetHandlerResponse:
        row = await self.store.get_handler(request.account_id, request.type)
        return pb.GetHandlerResponse(handler=handler_pb(row))

    async def UpdateHandler(self, request: Any, context: Ctx) -> pb.UpdateHandlerResponse:
        changes = json_format.MessageToDict(request.policies)
        row = await self.store.update_handler(request.account_id, request.type, changes)
        return pb.UpdateHandlerResponse(handler=handler_pb(row))

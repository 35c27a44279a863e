"""Thin gRPC adapters of the faces service: protobuf <-> core calls, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import grpc
from luna.common.v1 import info_pb2
from luna.faces.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    attributes_pb2,
    attributes_pb2_grpc,
    blobs_pb2,
    blobs_pb2_grpc,
    faces_pb2,
    faces_pb2_grpc,
    lists_pb2,
    lists_pb2_grpc,
    tokens_pb2,
    tokens_pb2_grpc,
)

from services.common import permissions, times
from services.common.grpc_server import counting, getting, listing, unary
from services.common.pbjson import dataclass_of, message_of
from services.common.scoping import Scope
from services.faces import descriptors
from services.faces.accounts import Account, Accounts
from services.faces.attributes import Attribute, Attributes
from services.faces.blobs import Blob, BlobInput, Blobs
from services.faces.faces import AttributeSource, Face, FaceAttribute, FaceFilter, Faces
from services.faces.lists import FaceList, ListFilter, Lists
from services.faces.tokens import Token, TokenFields, Tokens

ACCOUNT_TYPES = {
    "user": accounts_pb2.ACCOUNT_TYPE_USER,
    "advanced_user": accounts_pb2.ACCOUNT_TYPE_ADVANCED_USER,
    "admin": accounts_pb2.ACCOUNT_TYPE_ADMIN,
}
ACCOUNT_TYPE_NAMES = {v: k for k, v in ACCOUNT_TYPES.items()}
VISIBILITY = {
    "account": accounts_pb2.VISIBILITY_AREA_ACCOUNT,
    "all": accounts_pb2.VISIBILITY_AREA_ALL,
}
VISIBILITY_NAMES = {v: k for k, v in VISIBILITY.items()}

# Called after a change that can make cached credentials stale (account id or token id).
ChangeHook = Callable[[str, str], Awaitable[None]]


def account_pb(account: Account) -> accounts_pb2.Account:
    return message_of(
        accounts_pb2.Account, account, account_type=ACCOUNT_TYPES[account.account_type]
    )


def token_pb(token: Token) -> tokens_pb2.Token:
    return message_of(
        tokens_pb2.Token,
        token,
        permissions=permissions.to_pb(token.permissions),
        visibility_area=VISIBILITY[token.visibility_area],
    )


def fields_of(fields: tokens_pb2.TokenFields) -> TokenFields:
    return TokenFields(
        description=fields.description,
        expiration_time=(
            times.from_timestamp(fields.expiration_time)
            if fields.HasField("expiration_time")
            else None
        ),
        permissions=permissions.from_pb(fields.permissions),
        visibility_area=VISIBILITY_NAMES.get(fields.visibility_area, "all"),
    )


class AccountsServicer(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(
        self, accounts: Accounts, tokens: Tokens, info: info_pb2.ServiceInfo, changed: ChangeHook
    ) -> None:
        self._accounts = accounts
        self._tokens = tokens
        self._info = info
        self._changed = changed

    CreateAccount = unary(
        lambda s, r: s._accounts.create(
            login=r.login,
            password=r.password,
            account_type=ACCOUNT_TYPE_NAMES.get(r.account_type, ""),
            description=r.description,
            account_id=r.account_id,
        ),
        lambda account: accounts_pb2.CreateAccountResponse(account=account_pb(account)),
    )
    GetAccount = unary(
        lambda s, r: s._accounts.get(r.account_id),
        lambda account: accounts_pb2.GetAccountResponse(account=account_pb(account)),
    )

    async def UpdateAccount(
        self, request: accounts_pb2.UpdateAccountRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.UpdateAccountResponse:
        account = await self._accounts.update(
            request.account_id,
            login=request.login if request.HasField("login") else None,
            password=request.password if request.HasField("password") else None,
            account_type=ACCOUNT_TYPE_NAMES.get(request.account_type),
            description=request.description if request.HasField("description") else None,
        )
        await self._changed(request.account_id, "")
        return accounts_pb2.UpdateAccountResponse(account=account_pb(account))

    async def DeleteAccount(
        self, request: accounts_pb2.DeleteAccountRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.DeleteAccountResponse:
        await self._accounts.delete(request.account_id)
        await self._changed(request.account_id, "")
        return accounts_pb2.DeleteAccountResponse()

    async def VerifyCredentials(
        self, request: accounts_pb2.VerifyCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.VerifyCredentialsResponse:
        kind = request.WhichOneof("credentials")
        if kind == "token":
            token = await self._tokens.verify(request.token)
            account = await self._accounts.get(token.account_id)
            return accounts_pb2.VerifyCredentialsResponse(
                account_id=account.account_id,
                account_type=ACCOUNT_TYPES[account.account_type],
                token_id=token.token_id,
                permissions=permissions.to_pb(token.permissions),
                visibility_area=VISIBILITY[token.visibility_area],
                expiration_time=(
                    times.to_timestamp(token.expiration_time) if token.expiration_time else None
                ),
            )
        if kind == "login_password":
            account = await self._accounts.verify_login(
                request.login_password.login, request.login_password.password
            )
        else:
            account = await self._accounts.get(request.account_id)
        return accounts_pb2.VerifyCredentialsResponse(
            account_id=account.account_id,
            account_type=ACCOUNT_TYPES[account.account_type],
            visibility_area=accounts_pb2.VISIBILITY_AREA_ALL,
        )

    async def GetInfo(
        self, request: accounts_pb2.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.GetInfoResponse:
        return accounts_pb2.GetInfoResponse(info=self._info)


class TokensServicer(tokens_pb2_grpc.TokensServiceServicer):
    def __init__(self, tokens: Tokens, changed: ChangeHook) -> None:
        self._tokens = tokens
        self._changed = changed

    CreateToken = unary(
        lambda s, r: s._tokens.create(Scope.from_pb(r.scope), fields_of(r.fields)),
        lambda token: tokens_pb2.CreateTokenResponse(token=token_pb(token)),
    )
    ListTokens = unary(
        lambda s, r: s._tokens.list(
            Scope.from_pb(r.scope),
            page=r.page.page or 1,
            page_size=r.page.page_size or 10,
            create_time_gte=times.from_optional(r, "create_time_gte"),
            create_time_lt=times.from_optional(r, "create_time_lt"),
        ),
        lambda tokens: tokens_pb2.ListTokensResponse(tokens=[token_pb(t) for t in tokens]),
    )
    GetToken = getting(
        "_tokens", "token_id", lambda token: tokens_pb2.GetTokenResponse(token=token_pb(token))
    )

    async def ReplaceToken(
        self, request: tokens_pb2.ReplaceTokenRequest, context: grpc.aio.ServicerContext
    ) -> tokens_pb2.ReplaceTokenResponse:
        token = await self._tokens.replace(
            Scope.from_pb(request.scope), request.token_id, fields_of(request.fields)
        )
        await self._changed("", request.token_id)
        return tokens_pb2.ReplaceTokenResponse(token=token_pb(token))

    async def DeleteToken(
        self, request: tokens_pb2.DeleteTokenRequest, context: grpc.aio.ServicerContext
    ) -> tokens_pb2.DeleteTokenResponse:
        await self._tokens.delete(Scope.from_pb(request.scope), request.token_id)
        await self._changed("", request.token_id)
        return tokens_pb2.DeleteTokenResponse()


# --- Faces, lists, temporary attributes ------------------------------------------------------


def attribute_data_of(data: attributes_pb2.AttributeData) -> descriptors.AttributeData:
    """Checked and normalised core data from the wire (raises LunaError on bad input)."""
    basic = (
        descriptors.BasicAttributes(
            data.basic_attributes.age, data.basic_attributes.gender, data.basic_attributes.ethnicity
        )
        if data.HasField("basic_attributes")
        else None
    )
    return descriptors.checked(
        [(d.descriptor, d.version) for d in data.descriptors],
        data.descriptor_samples,
        basic,
        data.basic_attributes_samples,
    )


def attribute_data_pb(data: descriptors.AttributeData) -> attributes_pb2.AttributeData:
    out = attributes_pb2.AttributeData(
        descriptors=[
            attributes_pb2.Descriptor(descriptor=d, version=v)
            for v, d in sorted(data.descriptors.items())
        ],
        descriptor_samples=data.descriptor_samples,
        basic_attributes_samples=data.basic_attributes_samples,
    )
    if data.basic_attributes is not None:
        b = data.basic_attributes
        out.basic_attributes.CopyFrom(
            attributes_pb2.BasicAttributes(age=b.age, gender=b.gender, ethnicity=b.ethnicity)
        )
    return out


def attribute_source_of(source: faces_pb2.FaceAttributeInput) -> AttributeSource:
    kind = source.WhichOneof("source")
    if kind == "attribute_id":
        return source.attribute_id
    if kind == "data":
        return attribute_data_of(source.data)
    return None


def face_pb(face: Face) -> faces_pb2.Face:
    return message_of(faces_pb2.Face, face)


def face_attribute_pb(attribute: FaceAttribute) -> faces_pb2.FaceAttribute:
    return message_of(faces_pb2.FaceAttribute, attribute, data=attribute_data_pb(attribute.data))


def face_filter_of(f: faces_pb2.FaceFilter) -> FaceFilter:
    return dataclass_of(FaceFilter, f)


def list_pb(item: FaceList) -> lists_pb2.List:
    return message_of(lists_pb2.List, item)


def list_filter_of(f: lists_pb2.ListFilter) -> ListFilter:
    return dataclass_of(ListFilter, f)


def attribute_pb(attribute: Attribute) -> attributes_pb2.Attribute:
    return message_of(attributes_pb2.Attribute, attribute, data=attribute_data_pb(attribute.data))


class FacesServicer(faces_pb2_grpc.FacesServiceServicer):
    def __init__(self, faces: Faces) -> None:
        self._faces = faces

    CreateFace = unary(
        lambda s, r: s._faces.create(
            Scope.from_pb(r.scope),
            event_id=r.event_id,
            user_data=r.user_data,
            external_id=r.external_id,
            avatar=r.avatar,
            attribute=attribute_source_of(r.attribute),
            list_ids=r.list_ids,
            event_pending=r.event_pending,
        ),
        lambda face: faces_pb2.CreateFaceResponse(face=face_pb(face)),
    )
    GetFace = unary(
        lambda s, r: s._faces.get(Scope.from_pb(r.scope), r.face_id, with_lists=r.with_lists),
        lambda face: faces_pb2.GetFaceResponse(face=face_pb(face)),
    )
    ListFaces = unary(
        lambda s, r: s._faces.list(
            Scope.from_pb(r.scope),
            face_filter_of(r.filter),
            page=r.page.page,
            page_size=r.page.page_size,
            with_lists=r.with_lists,
        ),
        lambda faces: faces_pb2.ListFacesResponse(faces=[face_pb(f) for f in faces]),
    )
    CountFaces = counting("_faces", face_filter_of, lambda n: faces_pb2.CountFacesResponse(count=n))

    async def UpdateFace(
        self, request: faces_pb2.UpdateFaceRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.UpdateFaceResponse:
        def opt(name: str) -> str | None:
            return getattr(request, name) if request.HasField(name) else None

        face = await self._faces.update(
            Scope.from_pb(request.scope),
            request.face_id,
            event_id=opt("event_id"),
            user_data=opt("user_data"),
            external_id=opt("external_id"),
            avatar=opt("avatar"),
        )
        return faces_pb2.UpdateFaceResponse(face=face_pb(face))

    DeleteFace = unary(
        lambda s, r: s._faces.delete(Scope.from_pb(r.scope), r.face_id),
        lambda _: faces_pb2.DeleteFaceResponse(),
    )
    DeleteFaces = unary(
        lambda s, r: s._faces.delete_many(
            Scope.from_pb(r.scope), r.face_ids, ignore_missing=r.ignore_missing
        ),
        lambda deleted: faces_pb2.DeleteFacesResponse(face_ids=deleted),
    )
    GetFaceAttribute = unary(
        lambda s, r: s._faces.get_attribute(
            Scope.from_pb(r.scope), r.face_id, descriptor_version=r.descriptor_version
        ),
        lambda a: faces_pb2.GetFaceAttributeResponse(attribute=face_attribute_pb(a)),
    )
    PutFaceAttribute = unary(
        lambda s, r: s._faces.put_attribute(
            Scope.from_pb(r.scope), r.face_id, attribute_source_of(r.attribute)
        ),
        lambda a: faces_pb2.PutFaceAttributeResponse(attribute=face_attribute_pb(a)),
    )
    DeleteFaceAttribute = unary(
        lambda s, r: s._faces.delete_attribute(Scope.from_pb(r.scope), r.face_id),
        lambda _: faces_pb2.DeleteFaceAttributeResponse(),
    )
    DeleteFaceDescriptors = unary(
        lambda s, r: s._faces.delete_descriptors(
            Scope.from_pb(r.scope), r.version, list(r.face_ids)
        ),
        lambda removed: faces_pb2.DeleteFaceDescriptorsResponse(face_ids=removed),
    )
    CountFaceAttributes = unary(
        lambda s, r: s._faces.count_attributes(Scope.from_pb(r.scope)),
        lambda n: faces_pb2.CountFaceAttributesResponse(count=n),
    )

    async def ImportFaces(
        self, request: faces_pb2.ImportFacesRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.ImportFacesResponse:
        from services.faces.bulk import ImportItem

        face_ids = await self._faces.import_faces(
            Scope.from_pb(request.scope),
            version=request.descriptor_version,
            list_ids=request.list_ids,
            items=[
                ImportItem(
                    descriptor=f.descriptor,
                    face_id=f.face_id,
                    user_data=f.user_data,
                    external_id=f.external_id,
                    avatar=f.avatar,
                )
                for f in request.faces
            ],
        )
        return faces_pb2.ImportFacesResponse(face_ids=face_ids)

    async def StreamFaceIds(
        self, request: faces_pb2.StreamFaceIdsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[faces_pb2.StreamFaceIdsResponse]:
        async for batch in self._faces.stream_ids(
            Scope.from_pb(request.scope), face_filter_of(request.filter), request.batch_size
        ):
            yield faces_pb2.StreamFaceIdsResponse(face_ids=batch)

    async def StreamDescriptors(
        self, request: faces_pb2.StreamDescriptorsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[faces_pb2.StreamDescriptorsResponse]:
        async for batch in self._faces.stream_descriptors(
            Scope.from_pb(request.scope),
            list_ids=request.list_ids,
            face_ids=request.face_ids,
            descriptor_version=request.descriptor_version,
            batch_size=request.batch_size,
        ):
            yield faces_pb2.StreamDescriptorsResponse(
                descriptors=[
                    faces_pb2.FaceDescriptor(
                        face_id=d.face_id,
                        account_id=d.account_id,
                        descriptor=d.descriptor,
                        version=d.version,
                        list_ids=d.list_ids,
                        face=face_pb(d.face) if d.face is not None else None,
                    )
                    for d in batch
                ]
            )


class ListsServicer(lists_pb2_grpc.ListsServiceServicer):
    def __init__(self, lists: Lists) -> None:
        self._lists = lists

    CreateList = unary(
        lambda s, r: s._lists.create(Scope.from_pb(r.scope), user_data=r.user_data),
        lambda item: lists_pb2.CreateListResponse(list=list_pb(item)),
    )
    GetList = getting(
        "_lists", "list_id", lambda item: lists_pb2.GetListResponse(list=list_pb(item))
    )
    ListLists = listing(
        "_lists",
        list_filter_of,
        lambda items: lists_pb2.ListListsResponse(lists=[list_pb(i) for i in items]),
    )
    CountLists = counting("_lists", list_filter_of, lambda n: lists_pb2.CountListsResponse(count=n))
    UpdateList = unary(
        lambda s, r: s._lists.update(Scope.from_pb(r.scope), r.list_id, user_data=r.user_data),
        lambda item: lists_pb2.UpdateListResponse(list=list_pb(item)),
    )
    DeleteList = unary(
        lambda s, r: s._lists.delete(Scope.from_pb(r.scope), r.list_id, with_faces=r.with_faces),
        lambda n: lists_pb2.DeleteListResponse(deleted_faces=n),
    )
    DeleteLists = unary(
        lambda s, r: s._lists.delete_many(
            Scope.from_pb(r.scope), r.list_ids, with_faces=r.with_faces
        ),
        lambda n: lists_pb2.DeleteListsResponse(deleted_faces=n),
    )
    AttachFaces = unary(
        lambda s, r: s._lists.attach(Scope.from_pb(r.scope), r.list_id, r.face_ids, bulk=r.bulk),
        lambda changed: lists_pb2.AttachFacesResponse(attached_face_ids=changed),
    )
    DetachFaces = unary(
        lambda s, r: s._lists.detach(Scope.from_pb(r.scope), r.list_id, r.face_ids),
        lambda changed: lists_pb2.DetachFacesResponse(detached_face_ids=changed),
    )


class AttributesServicer(attributes_pb2_grpc.AttributesServiceServicer):
    def __init__(self, attributes: Attributes) -> None:
        self._attributes = attributes

    CreateAttribute = unary(
        lambda s, r: s._attributes.create(
            Scope.from_pb(r.scope), attribute_data_of(r.data), ttl_s=r.ttl_seconds
        ),
        lambda a: attributes_pb2.CreateAttributeResponse(attribute=attribute_pb(a)),
    )
    GetAttribute = unary(
        lambda s, r: s._attributes.get(
            Scope.from_pb(r.scope), r.attribute_id, descriptor_version=r.descriptor_version
        ),
        lambda a: attributes_pb2.GetAttributeResponse(attribute=attribute_pb(a)),
    )
    GetAttributes = unary(
        lambda s, r: s._attributes.get_many(
            Scope.from_pb(r.scope), r.attribute_ids, descriptor_version=r.descriptor_version
        ),
        lambda found: attributes_pb2.GetAttributesResponse(
            attributes=[attribute_pb(a) for a in found]
        ),
    )
    DeleteAttribute = unary(
        lambda s, r: s._attributes.delete(Scope.from_pb(r.scope), r.attribute_id),
        lambda _: attributes_pb2.DeleteAttributeResponse(),
    )
    GetAttributeSamples = getting(
        "_attributes",
        "attribute_id",
        lambda a: attributes_pb2.GetAttributeSamplesResponse(sample_ids=a.data.samples),
    )


BLOB_KINDS = {
    blobs_pb2.BLOB_KIND_FACE_SAMPLE: "face_sample",
    blobs_pb2.BLOB_KIND_BODY_SAMPLE: "body_sample",
    blobs_pb2.BLOB_KIND_IMAGE: "image",
    blobs_pb2.BLOB_KIND_OBJECT: "object",
}
BLOB_KIND_VALUES = {v: k for k, v in BLOB_KINDS.items()}


def blob_pb(blob: Blob) -> blobs_pb2.Blob:
    return message_of(blobs_pb2.Blob, blob, kind=BLOB_KIND_VALUES[blob.kind])


class BlobsServicer(blobs_pb2_grpc.BlobsServiceServicer):
    def __init__(self, blobs: Blobs) -> None:
        self._blobs = blobs

    PutBlobs = unary(
        lambda s, r: s._blobs.put(
            Scope.from_pb(r.scope),
            [
                BlobInput(BLOB_KINDS.get(b.kind, ""), b.content_type, b.data, dict(b.meta))
                for b in r.blobs
            ],
        ),
        lambda blob_ids: blobs_pb2.PutBlobsResponse(blob_ids=blob_ids),
    )

    GetBlob = unary(
        lambda s, r: s._blobs.get(
            Scope.from_pb(r.scope),
            BLOB_KINDS.get(r.kind, ""),
            r.blob_id,
            metadata_only=r.metadata_only,
        ),
        lambda blob: blobs_pb2.GetBlobResponse(blob=blob_pb(blob)),
    )
    DeleteBlob = unary(
        lambda s, r: s._blobs.delete(Scope.from_pb(r.scope), BLOB_KINDS.get(r.kind, ""), r.blob_id),
        lambda _: blobs_pb2.DeleteBlobResponse(),
    )


# --- Wiring -----------------------------------------------------------------------------------

# The faces process's gRPC services, for health and reflection.
SERVICES = (accounts_pb2, tokens_pb2, faces_pb2, lists_pb2, attributes_pb2, blobs_pb2)


class Cores(Protocol):
    """The faces process's cores, as its app holds them."""

    accounts: Accounts
    tokens: Tokens
    faces: Faces
    lists: Lists
    attributes: Attributes
    blobs: Blobs


def register(
    server: grpc.aio.Server, cores: Cores, info: info_pb2.ServiceInfo, changed: ChangeHook
) -> None:
    c = cores
    accounts_pb2_grpc.add_AccountsServiceServicer_to_server(
        AccountsServicer(c.accounts, c.tokens, info, changed), server
    )
    tokens_pb2_grpc.add_TokensServiceServicer_to_server(TokensServicer(c.tokens, changed), server)
    faces_pb2_grpc.add_FacesServiceServicer_to_server(FacesServicer(c.faces), server)
    lists_pb2_grpc.add_ListsServiceServicer_to_server(ListsServicer(c.lists), server)
    attributes_pb2_grpc.add_AttributesServiceServicer_to_server(
        AttributesServicer(c.attributes), server
    )
    blobs_pb2_grpc.add_BlobsServiceServicer_to_server(BlobsServicer(c.blobs), server)

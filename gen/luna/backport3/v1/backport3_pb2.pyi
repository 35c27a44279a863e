import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import paging_pb2 as _paging_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIST_KIND_UNSPECIFIED: _ClassVar[ListKind]
    LIST_KIND_DESCRIPTORS: _ClassVar[ListKind]
    LIST_KIND_PERSONS: _ClassVar[ListKind]

class HandlerType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HANDLER_TYPE_UNSPECIFIED: _ClassVar[HandlerType]
    HANDLER_TYPE_EXTRACTOR: _ClassVar[HandlerType]
    HANDLER_TYPE_VERIFY: _ClassVar[HandlerType]
    HANDLER_TYPE_IDENTIFY: _ClassVar[HandlerType]
LIST_KIND_UNSPECIFIED: ListKind
LIST_KIND_DESCRIPTORS: ListKind
LIST_KIND_PERSONS: ListKind
HANDLER_TYPE_UNSPECIFIED: HandlerType
HANDLER_TYPE_EXTRACTOR: HandlerType
HANDLER_TYPE_VERIFY: HandlerType
HANDLER_TYPE_IDENTIFY: HandlerType

class Account(_message.Message):
    __slots__ = ("account_id", "email", "organization_name", "suspended", "create_time")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    email: str
    organization_name: str
    suspended: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, account_id: _Optional[str] = ..., email: _Optional[str] = ..., organization_name: _Optional[str] = ..., suspended: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("token_id", "account_id", "token_data", "create_time")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_DATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    account_id: str
    token_data: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, token_id: _Optional[str] = ..., account_id: _Optional[str] = ..., token_data: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("person_id", "account_id", "user_data", "external_id", "create_time", "descriptor_ids", "list_ids")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_IDS_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    account_id: str
    user_data: str
    external_id: str
    create_time: _timestamp_pb2.Timestamp
    descriptor_ids: _containers.RepeatedScalarFieldContainer[str]
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, person_id: _Optional[str] = ..., account_id: _Optional[str] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., descriptor_ids: _Optional[_Iterable[str]] = ..., list_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class List(_message.Message):
    __slots__ = ("list_id", "account_id", "kind", "list_data", "create_time")
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIST_DATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    list_id: str
    account_id: str
    kind: ListKind
    list_data: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, list_id: _Optional[str] = ..., account_id: _Optional[str] = ..., kind: _Optional[_Union[ListKind, str]] = ..., list_data: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Handler(_message.Message):
    __slots__ = ("handler_id", "account_id", "type", "policies", "version", "create_time", "last_update_time")
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    handler_id: str
    account_id: str
    type: HandlerType
    policies: _struct_pb2.Struct
    version: int
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    def __init__(self, handler_id: _Optional[str] = ..., account_id: _Optional[str] = ..., type: _Optional[_Union[HandlerType, str]] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAccountRequest(_message.Message):
    __slots__ = ("account_id", "email", "organization_name")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    email: str
    organization_name: str
    def __init__(self, account_id: _Optional[str] = ..., email: _Optional[str] = ..., organization_name: _Optional[str] = ...) -> None: ...

class CreateAccountResponse(_message.Message):
    __slots__ = ("account", "token")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    account: Account
    token: Token
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("account_id", "token_data")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_DATA_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    token_data: str
    def __init__(self, account_id: _Optional[str] = ..., token_data: _Optional[str] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("account_id", "page")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    page: _paging_pb2.Page
    def __init__(self, account_id: _Optional[str] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "count")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[Token]
    count: int
    def __init__(self, tokens: _Optional[_Iterable[_Union[Token, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class GetTokenRequest(_message.Message):
    __slots__ = ("account_id", "token_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    token_id: str
    def __init__(self, account_id: _Optional[str] = ..., token_id: _Optional[str] = ...) -> None: ...

class GetTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class UpdateTokenRequest(_message.Message):
    __slots__ = ("account_id", "token_id", "token_data")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_DATA_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    token_id: str
    token_data: str
    def __init__(self, account_id: _Optional[str] = ..., token_id: _Optional[str] = ..., token_data: _Optional[str] = ...) -> None: ...

class UpdateTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class DeleteTokensRequest(_message.Message):
    __slots__ = ("account_id", "token_ids")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    token_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., token_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteTokensResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class VerifyTokenResponse(_message.Message):
    __slots__ = ("token", "account")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    token: Token
    account: Account
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class CreatePersonRequest(_message.Message):
    __slots__ = ("account_id", "user_data", "external_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    user_data: str
    external_id: str
    def __init__(self, account_id: _Optional[str] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ...) -> None: ...

class CreatePersonResponse(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class GetPersonRequest(_message.Message):
    __slots__ = ("account_id", "person_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    person_id: str
    def __init__(self, account_id: _Optional[str] = ..., person_id: _Optional[str] = ...) -> None: ...

class GetPersonResponse(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class ListPersonsRequest(_message.Message):
    __slots__ = ("account_id", "user_data", "external_id", "list_id", "person_ids", "page")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_IDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    user_data: str
    external_id: str
    list_id: str
    person_ids: _containers.RepeatedScalarFieldContainer[str]
    page: _paging_pb2.Page
    def __init__(self, account_id: _Optional[str] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ..., list_id: _Optional[str] = ..., person_ids: _Optional[_Iterable[str]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ...) -> None: ...

class ListPersonsResponse(_message.Message):
    __slots__ = ("persons", "count")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[Person]
    count: int
    def __init__(self, persons: _Optional[_Iterable[_Union[Person, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class UpdatePersonRequest(_message.Message):
    __slots__ = ("account_id", "person_id", "user_data", "external_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    person_id: str
    user_data: str
    external_id: str
    def __init__(self, account_id: _Optional[str] = ..., person_id: _Optional[str] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ...) -> None: ...

class UpdatePersonResponse(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class DeletePersonRequest(_message.Message):
    __slots__ = ("account_id", "person_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    person_id: str
    def __init__(self, account_id: _Optional[str] = ..., person_id: _Optional[str] = ...) -> None: ...

class DeletePersonResponse(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class LinkDescriptorRequest(_message.Message):
    __slots__ = ("account_id", "person_id", "descriptor_id", "attach")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    person_id: str
    descriptor_id: str
    attach: bool
    def __init__(self, account_id: _Optional[str] = ..., person_id: _Optional[str] = ..., descriptor_id: _Optional[str] = ..., attach: _Optional[bool] = ...) -> None: ...

class LinkDescriptorResponse(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class LinkPersonsToListRequest(_message.Message):
    __slots__ = ("account_id", "list_id", "person_ids", "attach")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    list_id: str
    person_ids: _containers.RepeatedScalarFieldContainer[str]
    attach: bool
    def __init__(self, account_id: _Optional[str] = ..., list_id: _Optional[str] = ..., person_ids: _Optional[_Iterable[str]] = ..., attach: _Optional[bool] = ...) -> None: ...

class LinkPersonsToListResponse(_message.Message):
    __slots__ = ("persons",)
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[Person]
    def __init__(self, persons: _Optional[_Iterable[_Union[Person, _Mapping]]] = ...) -> None: ...

class PersonsOfDescriptorsRequest(_message.Message):
    __slots__ = ("account_id", "descriptor_ids")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_IDS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    descriptor_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., descriptor_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PersonsOfDescriptorsResponse(_message.Message):
    __slots__ = ("person_ids",)
    class PersonIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PERSON_IDS_FIELD_NUMBER: _ClassVar[int]
    person_ids: _containers.ScalarMap[str, str]
    def __init__(self, person_ids: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateListRequest(_message.Message):
    __slots__ = ("account_id", "list_id", "kind", "list_data")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIST_DATA_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    list_id: str
    kind: ListKind
    list_data: str
    def __init__(self, account_id: _Optional[str] = ..., list_id: _Optional[str] = ..., kind: _Optional[_Union[ListKind, str]] = ..., list_data: _Optional[str] = ...) -> None: ...

class CreateListResponse(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: List
    def __init__(self, list: _Optional[_Union[List, _Mapping]] = ...) -> None: ...

class GetListsRequest(_message.Message):
    __slots__ = ("account_id", "list_ids")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., list_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetListsResponse(_message.Message):
    __slots__ = ("lists",)
    LISTS_FIELD_NUMBER: _ClassVar[int]
    lists: _containers.RepeatedCompositeFieldContainer[List]
    def __init__(self, lists: _Optional[_Iterable[_Union[List, _Mapping]]] = ...) -> None: ...

class ListListsRequest(_message.Message):
    __slots__ = ("account_id", "kind", "page")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    kind: ListKind
    page: _paging_pb2.Page
    def __init__(self, account_id: _Optional[str] = ..., kind: _Optional[_Union[ListKind, str]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ...) -> None: ...

class ListListsResponse(_message.Message):
    __slots__ = ("lists", "count")
    LISTS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    lists: _containers.RepeatedCompositeFieldContainer[List]
    count: int
    def __init__(self, lists: _Optional[_Iterable[_Union[List, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class UpdateListRequest(_message.Message):
    __slots__ = ("account_id", "list_id", "list_data")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_DATA_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    list_id: str
    list_data: str
    def __init__(self, account_id: _Optional[str] = ..., list_id: _Optional[str] = ..., list_data: _Optional[str] = ...) -> None: ...

class UpdateListResponse(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: List
    def __init__(self, list: _Optional[_Union[List, _Mapping]] = ...) -> None: ...

class DeleteListsRequest(_message.Message):
    __slots__ = ("account_id", "list_ids")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., list_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteListsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHandlerRequest(_message.Message):
    __slots__ = ("account_id", "type")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    type: HandlerType
    def __init__(self, account_id: _Optional[str] = ..., type: _Optional[_Union[HandlerType, str]] = ...) -> None: ...

class GetHandlerResponse(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: Handler
    def __init__(self, handler: _Optional[_Union[Handler, _Mapping]] = ...) -> None: ...

class UpdateHandlerRequest(_message.Message):
    __slots__ = ("account_id", "type", "policies")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    type: HandlerType
    policies: _struct_pb2.Struct
    def __init__(self, account_id: _Optional[str] = ..., type: _Optional[_Union[HandlerType, str]] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UpdateHandlerResponse(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: Handler
    def __init__(self, handler: _Optional[_Union[Handler, _Mapping]] = ...) -> None: ...

class TrackDescriptorsRequest(_message.Message):
    __slots__ = ("account_id", "descriptor_ids")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_IDS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    descriptor_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., descriptor_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TrackDescriptorsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

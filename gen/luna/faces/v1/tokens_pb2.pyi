import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from luna.common.v1 import paging_pb2 as _paging_pb2
from luna.faces.v1 import accounts_pb2 as _accounts_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Token(_message.Message):
    __slots__ = ("token_id", "account_id", "description", "expiration_time", "permissions", "visibility_area", "token", "create_time", "last_update_time")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_AREA_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    account_id: str
    description: str
    expiration_time: _timestamp_pb2.Timestamp
    permissions: _accounts_pb2.Permissions
    visibility_area: _accounts_pb2.VisibilityArea
    token: str
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    def __init__(self, token_id: _Optional[str] = ..., account_id: _Optional[str] = ..., description: _Optional[str] = ..., expiration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., permissions: _Optional[_Union[_accounts_pb2.Permissions, _Mapping]] = ..., visibility_area: _Optional[_Union[_accounts_pb2.VisibilityArea, str]] = ..., token: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TokenFields(_message.Message):
    __slots__ = ("description", "expiration_time", "permissions", "visibility_area")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_AREA_FIELD_NUMBER: _ClassVar[int]
    description: str
    expiration_time: _timestamp_pb2.Timestamp
    permissions: _accounts_pb2.Permissions
    visibility_area: _accounts_pb2.VisibilityArea
    def __init__(self, description: _Optional[str] = ..., expiration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., permissions: _Optional[_Union[_accounts_pb2.Permissions, _Mapping]] = ..., visibility_area: _Optional[_Union[_accounts_pb2.VisibilityArea, str]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("scope", "fields")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    fields: TokenFields
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., fields: _Optional[_Union[TokenFields, _Mapping]] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("scope", "page", "create_time_gte", "create_time_lt")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    page: _paging_pb2.Page
    create_time_gte: _timestamp_pb2.Timestamp
    create_time_lt: _timestamp_pb2.Timestamp
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ..., create_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[Token]
    def __init__(self, tokens: _Optional[_Iterable[_Union[Token, _Mapping]]] = ...) -> None: ...

class GetTokenRequest(_message.Message):
    __slots__ = ("scope", "token_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    token_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., token_id: _Optional[str] = ...) -> None: ...

class GetTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class ReplaceTokenRequest(_message.Message):
    __slots__ = ("scope", "token_id", "fields")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    token_id: str
    fields: TokenFields
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., token_id: _Optional[str] = ..., fields: _Optional[_Union[TokenFields, _Mapping]] = ...) -> None: ...

class ReplaceTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class DeleteTokenRequest(_message.Message):
    __slots__ = ("scope", "token_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    token_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., token_id: _Optional[str] = ...) -> None: ...

class DeleteTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

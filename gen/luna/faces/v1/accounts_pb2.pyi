import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import info_pb2 as _info_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccountType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_TYPE_UNSPECIFIED: _ClassVar[AccountType]
    ACCOUNT_TYPE_USER: _ClassVar[AccountType]
    ACCOUNT_TYPE_ADVANCED_USER: _ClassVar[AccountType]
    ACCOUNT_TYPE_ADMIN: _ClassVar[AccountType]

class VisibilityArea(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VISIBILITY_AREA_UNSPECIFIED: _ClassVar[VisibilityArea]
    VISIBILITY_AREA_ACCOUNT: _ClassVar[VisibilityArea]
    VISIBILITY_AREA_ALL: _ClassVar[VisibilityArea]
ACCOUNT_TYPE_UNSPECIFIED: AccountType
ACCOUNT_TYPE_USER: AccountType
ACCOUNT_TYPE_ADVANCED_USER: AccountType
ACCOUNT_TYPE_ADMIN: AccountType
VISIBILITY_AREA_UNSPECIFIED: VisibilityArea
VISIBILITY_AREA_ACCOUNT: VisibilityArea
VISIBILITY_AREA_ALL: VisibilityArea

class Account(_message.Message):
    __slots__ = ("account_id", "login", "account_type", "description", "create_time", "last_update_time")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    login: str
    account_type: AccountType
    description: str
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    def __init__(self, account_id: _Optional[str] = ..., login: _Optional[str] = ..., account_type: _Optional[_Union[AccountType, str]] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAccountRequest(_message.Message):
    __slots__ = ("account_id", "login", "password", "account_type", "description")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    login: str
    password: str
    account_type: AccountType
    description: str
    def __init__(self, account_id: _Optional[str] = ..., login: _Optional[str] = ..., password: _Optional[str] = ..., account_type: _Optional[_Union[AccountType, str]] = ..., description: _Optional[str] = ...) -> None: ...

class CreateAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

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

class UpdateAccountRequest(_message.Message):
    __slots__ = ("account_id", "login", "password", "account_type", "description")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    login: str
    password: str
    account_type: AccountType
    description: str
    def __init__(self, account_id: _Optional[str] = ..., login: _Optional[str] = ..., password: _Optional[str] = ..., account_type: _Optional[_Union[AccountType, str]] = ..., description: _Optional[str] = ...) -> None: ...

class UpdateAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class DeleteAccountRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class DeleteAccountResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyCredentialsRequest(_message.Message):
    __slots__ = ("login_password", "account_id", "token")
    class LoginPassword(_message.Message):
        __slots__ = ("login", "password")
        LOGIN_FIELD_NUMBER: _ClassVar[int]
        PASSWORD_FIELD_NUMBER: _ClassVar[int]
        login: str
        password: str
        def __init__(self, login: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...
    LOGIN_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    login_password: VerifyCredentialsRequest.LoginPassword
    account_id: str
    token: str
    def __init__(self, login_password: _Optional[_Union[VerifyCredentialsRequest.LoginPassword, _Mapping]] = ..., account_id: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class VerifyCredentialsResponse(_message.Message):
    __slots__ = ("account_id", "account_type", "token_id", "permissions", "visibility_area", "expiration_time")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_AREA_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    account_type: AccountType
    token_id: str
    permissions: Permissions
    visibility_area: VisibilityArea
    expiration_time: _timestamp_pb2.Timestamp
    def __init__(self, account_id: _Optional[str] = ..., account_type: _Optional[_Union[AccountType, str]] = ..., token_id: _Optional[str] = ..., permissions: _Optional[_Union[Permissions, _Mapping]] = ..., visibility_area: _Optional[_Union[VisibilityArea, str]] = ..., expiration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Permissions(_message.Message):
    __slots__ = ("resources", "emit_events")
    class ResourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Actions
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Actions, _Mapping]] = ...) -> None: ...
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    EMIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    resources: _containers.MessageMap[str, Actions]
    emit_events: EmitEvents
    def __init__(self, resources: _Optional[_Mapping[str, Actions]] = ..., emit_events: _Optional[_Union[EmitEvents, _Mapping]] = ...) -> None: ...

class EmitEvents(_message.Message):
    __slots__ = ("allowed", "white_list", "black_list")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    WHITE_LIST_FIELD_NUMBER: _ClassVar[int]
    BLACK_LIST_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    white_list: _containers.RepeatedScalarFieldContainer[str]
    black_list: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allowed: _Optional[bool] = ..., white_list: _Optional[_Iterable[str]] = ..., black_list: _Optional[_Iterable[str]] = ...) -> None: ...

class Actions(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, actions: _Optional[_Iterable[str]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _info_pb2.ServiceInfo
    def __init__(self, info: _Optional[_Union[_info_pb2.ServiceInfo, _Mapping]] = ...) -> None: ...

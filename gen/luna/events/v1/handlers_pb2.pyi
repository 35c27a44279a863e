import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from luna.common.v1 import paging_pb2 as _paging_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Handler(_message.Message):
    __slots__ = ("handler_id", "account_id", "description", "handler_type", "policies", "lambda_id", "create_time", "last_update_time")
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HANDLER_TYPE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    handler_id: str
    account_id: str
    description: str
    handler_type: int
    policies: _struct_pb2.Struct
    lambda_id: str
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    def __init__(self, handler_id: _Optional[str] = ..., account_id: _Optional[str] = ..., description: _Optional[str] = ..., handler_type: _Optional[int] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., lambda_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HandlerFilter(_message.Message):
    __slots__ = ("description", "handler_type")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HANDLER_TYPE_FIELD_NUMBER: _ClassVar[int]
    description: str
    handler_type: int
    def __init__(self, description: _Optional[str] = ..., handler_type: _Optional[int] = ...) -> None: ...

class HandlerFields(_message.Message):
    __slots__ = ("description", "handler_type", "policies", "lambda_id")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HANDLER_TYPE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_ID_FIELD_NUMBER: _ClassVar[int]
    description: str
    handler_type: int
    policies: _struct_pb2.Struct
    lambda_id: str
    def __init__(self, description: _Optional[str] = ..., handler_type: _Optional[int] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., lambda_id: _Optional[str] = ...) -> None: ...

class CreateHandlerRequest(_message.Message):
    __slots__ = ("scope", "fields")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    fields: HandlerFields
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., fields: _Optional[_Union[HandlerFields, _Mapping]] = ...) -> None: ...

class CreateHandlerResponse(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: Handler
    def __init__(self, handler: _Optional[_Union[Handler, _Mapping]] = ...) -> None: ...

class GetHandlerRequest(_message.Message):
    __slots__ = ("scope", "handler_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    handler_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., handler_id: _Optional[str] = ...) -> None: ...

class GetHandlerResponse(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: Handler
    def __init__(self, handler: _Optional[_Union[Handler, _Mapping]] = ...) -> None: ...

class ListHandlersRequest(_message.Message):
    __slots__ = ("scope", "filter", "page")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: HandlerFilter
    page: _paging_pb2.Page
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[HandlerFilter, _Mapping]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ...) -> None: ...

class ListHandlersResponse(_message.Message):
    __slots__ = ("handlers",)
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    handlers: _containers.RepeatedCompositeFieldContainer[Handler]
    def __init__(self, handlers: _Optional[_Iterable[_Union[Handler, _Mapping]]] = ...) -> None: ...

class CountHandlersRequest(_message.Message):
    __slots__ = ("scope", "filter")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: HandlerFilter
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[HandlerFilter, _Mapping]] = ...) -> None: ...

class CountHandlersResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ReplaceHandlerRequest(_message.Message):
    __slots__ = ("scope", "handler_id", "fields")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    handler_id: str
    fields: HandlerFields
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., handler_id: _Optional[str] = ..., fields: _Optional[_Union[HandlerFields, _Mapping]] = ...) -> None: ...

class ReplaceHandlerResponse(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: Handler
    def __init__(self, handler: _Optional[_Union[Handler, _Mapping]] = ...) -> None: ...

class DeleteHandlerRequest(_message.Message):
    __slots__ = ("scope", "handler_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    handler_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., handler_id: _Optional[str] = ...) -> None: ...

class DeleteHandlerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ValidatePoliciesRequest(_message.Message):
    __slots__ = ("scope", "policies")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    policies: _struct_pb2.Struct
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ValidatePoliciesResponse(_message.Message):
    __slots__ = ("policies",)
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _struct_pb2.Struct
    def __init__(self, policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

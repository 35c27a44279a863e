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

class Verifier(_message.Message):
    __slots__ = ("verifier_id", "account_id", "description", "policies", "version", "create_time", "last_update_time")
    VERIFIER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    verifier_id: str
    account_id: str
    description: str
    policies: _struct_pb2.Struct
    version: int
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    def __init__(self, verifier_id: _Optional[str] = ..., account_id: _Optional[str] = ..., description: _Optional[str] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VerifierFilter(_message.Message):
    __slots__ = ("description",)
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    description: str
    def __init__(self, description: _Optional[str] = ...) -> None: ...

class CreateVerifierRequest(_message.Message):
    __slots__ = ("scope", "description", "policies")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    description: str
    policies: _struct_pb2.Struct
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., description: _Optional[str] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateVerifierResponse(_message.Message):
    __slots__ = ("verifier",)
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    verifier: Verifier
    def __init__(self, verifier: _Optional[_Union[Verifier, _Mapping]] = ...) -> None: ...

class GetVerifierRequest(_message.Message):
    __slots__ = ("scope", "verifier_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    verifier_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., verifier_id: _Optional[str] = ...) -> None: ...

class GetVerifierResponse(_message.Message):
    __slots__ = ("verifier",)
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    verifier: Verifier
    def __init__(self, verifier: _Optional[_Union[Verifier, _Mapping]] = ...) -> None: ...

class ListVerifiersRequest(_message.Message):
    __slots__ = ("scope", "filter", "page")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: VerifierFilter
    page: _paging_pb2.Page
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[VerifierFilter, _Mapping]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ...) -> None: ...

class ListVerifiersResponse(_message.Message):
    __slots__ = ("verifiers",)
    VERIFIERS_FIELD_NUMBER: _ClassVar[int]
    verifiers: _containers.RepeatedCompositeFieldContainer[Verifier]
    def __init__(self, verifiers: _Optional[_Iterable[_Union[Verifier, _Mapping]]] = ...) -> None: ...

class CountVerifiersRequest(_message.Message):
    __slots__ = ("scope", "filter")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: VerifierFilter
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[VerifierFilter, _Mapping]] = ...) -> None: ...

class CountVerifiersResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ReplaceVerifierRequest(_message.Message):
    __slots__ = ("scope", "verifier_id", "description", "policies")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    verifier_id: str
    description: str
    policies: _struct_pb2.Struct
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., verifier_id: _Optional[str] = ..., description: _Optional[str] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ReplaceVerifierResponse(_message.Message):
    __slots__ = ("verifier",)
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    verifier: Verifier
    def __init__(self, verifier: _Optional[_Union[Verifier, _Mapping]] = ...) -> None: ...

class DeleteVerifierRequest(_message.Message):
    __slots__ = ("scope", "verifier_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    verifier_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., verifier_id: _Optional[str] = ...) -> None: ...

class DeleteVerifierResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

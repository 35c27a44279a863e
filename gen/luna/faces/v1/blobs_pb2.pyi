import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BlobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BLOB_KIND_UNSPECIFIED: _ClassVar[BlobKind]
    BLOB_KIND_FACE_SAMPLE: _ClassVar[BlobKind]
    BLOB_KIND_BODY_SAMPLE: _ClassVar[BlobKind]
    BLOB_KIND_IMAGE: _ClassVar[BlobKind]
    BLOB_KIND_OBJECT: _ClassVar[BlobKind]
BLOB_KIND_UNSPECIFIED: BlobKind
BLOB_KIND_FACE_SAMPLE: BlobKind
BLOB_KIND_BODY_SAMPLE: BlobKind
BLOB_KIND_IMAGE: BlobKind
BLOB_KIND_OBJECT: BlobKind

class Blob(_message.Message):
    __slots__ = ("blob_id", "account_id", "kind", "content_type", "data", "meta", "create_time", "size")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    account_id: str
    kind: BlobKind
    content_type: str
    data: bytes
    meta: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    size: int
    def __init__(self, blob_id: _Optional[str] = ..., account_id: _Optional[str] = ..., kind: _Optional[_Union[BlobKind, str]] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., meta: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size: _Optional[int] = ...) -> None: ...

class BlobInput(_message.Message):
    __slots__ = ("kind", "content_type", "data", "meta")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    kind: BlobKind
    content_type: str
    data: bytes
    meta: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[_Union[BlobKind, str]] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., meta: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PutBlobsRequest(_message.Message):
    __slots__ = ("scope", "blobs")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    blobs: _containers.RepeatedCompositeFieldContainer[BlobInput]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., blobs: _Optional[_Iterable[_Union[BlobInput, _Mapping]]] = ...) -> None: ...

class PutBlobsResponse(_message.Message):
    __slots__ = ("blob_ids",)
    BLOB_IDS_FIELD_NUMBER: _ClassVar[int]
    blob_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, blob_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetBlobRequest(_message.Message):
    __slots__ = ("scope", "kind", "blob_id", "metadata_only")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_ONLY_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    kind: BlobKind
    blob_id: str
    metadata_only: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., kind: _Optional[_Union[BlobKind, str]] = ..., blob_id: _Optional[str] = ..., metadata_only: _Optional[bool] = ...) -> None: ...

class GetBlobResponse(_message.Message):
    __slots__ = ("blob",)
    BLOB_FIELD_NUMBER: _ClassVar[int]
    blob: Blob
    def __init__(self, blob: _Optional[_Union[Blob, _Mapping]] = ...) -> None: ...

class DeleteBlobRequest(_message.Message):
    __slots__ = ("scope", "kind", "blob_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    kind: BlobKind
    blob_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., kind: _Optional[_Union[BlobKind, str]] = ..., blob_id: _Optional[str] = ...) -> None: ...

class DeleteBlobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

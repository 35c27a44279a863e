import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.faces.v1 import faces_pb2 as _faces_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FaceChange(_message.Message):
    __slots__ = ("change_id", "kind", "account_id", "face_id", "descriptor", "descriptor_version", "list_ids", "list_id", "time", "face", "linked", "attribute_id", "expire_time")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[FaceChange.Kind]
        KIND_UPSERT_FACE: _ClassVar[FaceChange.Kind]
        KIND_DELETE_FACE: _ClassVar[FaceChange.Kind]
        KIND_ATTACH: _ClassVar[FaceChange.Kind]
        KIND_DETACH: _ClassVar[FaceChange.Kind]
        KIND_DELETE_LIST: _ClassVar[FaceChange.Kind]
        KIND_UPDATE_FACE: _ClassVar[FaceChange.Kind]
        KIND_ATTACH_MANY: _ClassVar[FaceChange.Kind]
        KIND_DETACH_MANY: _ClassVar[FaceChange.Kind]
        KIND_ATTRIBUTE_CREATE: _ClassVar[FaceChange.Kind]
        KIND_ATTRIBUTE_DELETE: _ClassVar[FaceChange.Kind]
    KIND_UNSPECIFIED: FaceChange.Kind
    KIND_UPSERT_FACE: FaceChange.Kind
    KIND_DELETE_FACE: FaceChange.Kind
    KIND_ATTACH: FaceChange.Kind
    KIND_DETACH: FaceChange.Kind
    KIND_DELETE_LIST: FaceChange.Kind
    KIND_UPDATE_FACE: FaceChange.Kind
    KIND_ATTACH_MANY: FaceChange.Kind
    KIND_DETACH_MANY: FaceChange.Kind
    KIND_ATTRIBUTE_CREATE: FaceChange.Kind
    KIND_ATTRIBUTE_DELETE: FaceChange.Kind
    class Linked(_message.Message):
        __slots__ = ("face_id", "descriptor", "descriptor_version", "list_ids")
        FACE_ID_FIELD_NUMBER: _ClassVar[int]
        DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
        DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
        LIST_IDS_FIELD_NUMBER: _ClassVar[int]
        face_id: str
        descriptor: bytes
        descriptor_version: int
        list_ids: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, face_id: _Optional[str] = ..., descriptor: _Optional[bytes] = ..., descriptor_version: _Optional[int] = ..., list_ids: _Optional[_Iterable[str]] = ...) -> None: ...
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    LINKED_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    kind: FaceChange.Kind
    account_id: str
    face_id: str
    descriptor: bytes
    descriptor_version: int
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    list_id: str
    time: _timestamp_pb2.Timestamp
    face: _faces_pb2.Face
    linked: _containers.RepeatedCompositeFieldContainer[FaceChange.Linked]
    attribute_id: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, change_id: _Optional[str] = ..., kind: _Optional[_Union[FaceChange.Kind, str]] = ..., account_id: _Optional[str] = ..., face_id: _Optional[str] = ..., descriptor: _Optional[bytes] = ..., descriptor_version: _Optional[int] = ..., list_ids: _Optional[_Iterable[str]] = ..., list_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., face: _Optional[_Union[_faces_pb2.Face, _Mapping]] = ..., linked: _Optional[_Iterable[_Union[FaceChange.Linked, _Mapping]]] = ..., attribute_id: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

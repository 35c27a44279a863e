import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from luna.common.v1 import paging_pb2 as _paging_pb2
from luna.faces.v1 import attributes_pb2 as _attributes_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImportFace(_message.Message):
    __slots__ = ("face_id", "descriptor", "user_data", "external_id", "avatar")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    AVATAR_FIELD_NUMBER: _ClassVar[int]
    face_id: str
    descriptor: bytes
    user_data: str
    external_id: str
    avatar: str
    def __init__(self, face_id: _Optional[str] = ..., descriptor: _Optional[bytes] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ..., avatar: _Optional[str] = ...) -> None: ...

class ImportFacesRequest(_message.Message):
    __slots__ = ("scope", "descriptor_version", "list_ids", "faces")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    descriptor_version: int
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    faces: _containers.RepeatedCompositeFieldContainer[ImportFace]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., descriptor_version: _Optional[int] = ..., list_ids: _Optional[_Iterable[str]] = ..., faces: _Optional[_Iterable[_Union[ImportFace, _Mapping]]] = ...) -> None: ...

class ImportFacesResponse(_message.Message):
    __slots__ = ("face_ids",)
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Face(_message.Message):
    __slots__ = ("face_id", "account_id", "event_id", "user_data", "external_id", "avatar", "create_time", "last_update_time", "list_ids", "has_attribute")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    AVATAR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    HAS_ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    face_id: str
    account_id: str
    event_id: str
    user_data: str
    external_id: str
    avatar: str
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    has_attribute: bool
    def __init__(self, face_id: _Optional[str] = ..., account_id: _Optional[str] = ..., event_id: _Optional[str] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ..., avatar: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., list_ids: _Optional[_Iterable[str]] = ..., has_attribute: _Optional[bool] = ...) -> None: ...

class FaceAttributeInput(_message.Message):
    __slots__ = ("attribute_id", "data")
    ATTRIBUTE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    attribute_id: str
    data: _attributes_pb2.AttributeData
    def __init__(self, attribute_id: _Optional[str] = ..., data: _Optional[_Union[_attributes_pb2.AttributeData, _Mapping]] = ...) -> None: ...

class FaceAttribute(_message.Message):
    __slots__ = ("face_id", "data", "create_time")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    face_id: str
    data: _attributes_pb2.AttributeData
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, face_id: _Optional[str] = ..., data: _Optional[_Union[_attributes_pb2.AttributeData, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FaceFilter(_message.Message):
    __slots__ = ("face_ids", "external_ids", "user_data", "list_id", "event_id", "create_time_gte", "create_time_lt", "face_id_gte", "face_id_lt")
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_GTE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_LT_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    external_ids: _containers.RepeatedScalarFieldContainer[str]
    user_data: str
    list_id: str
    event_id: str
    create_time_gte: _timestamp_pb2.Timestamp
    create_time_lt: _timestamp_pb2.Timestamp
    face_id_gte: str
    face_id_lt: str
    def __init__(self, face_ids: _Optional[_Iterable[str]] = ..., external_ids: _Optional[_Iterable[str]] = ..., user_data: _Optional[str] = ..., list_id: _Optional[str] = ..., event_id: _Optional[str] = ..., create_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., face_id_gte: _Optional[str] = ..., face_id_lt: _Optional[str] = ...) -> None: ...

class CreateFaceRequest(_message.Message):
    __slots__ = ("scope", "event_id", "user_data", "external_id", "avatar", "attribute", "list_ids", "event_pending")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    AVATAR_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_PENDING_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    event_id: str
    user_data: str
    external_id: str
    avatar: str
    attribute: FaceAttributeInput
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    event_pending: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., event_id: _Optional[str] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ..., avatar: _Optional[str] = ..., attribute: _Optional[_Union[FaceAttributeInput, _Mapping]] = ..., list_ids: _Optional[_Iterable[str]] = ..., event_pending: _Optional[bool] = ...) -> None: ...

class CreateFaceResponse(_message.Message):
    __slots__ = ("face",)
    FACE_FIELD_NUMBER: _ClassVar[int]
    face: Face
    def __init__(self, face: _Optional[_Union[Face, _Mapping]] = ...) -> None: ...

class GetFaceRequest(_message.Message):
    __slots__ = ("scope", "face_id", "with_lists")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    WITH_LISTS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    face_id: str
    with_lists: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., face_id: _Optional[str] = ..., with_lists: _Optional[bool] = ...) -> None: ...

class GetFaceResponse(_message.Message):
    __slots__ = ("face",)
    FACE_FIELD_NUMBER: _ClassVar[int]
    face: Face
    def __init__(self, face: _Optional[_Union[Face, _Mapping]] = ...) -> None: ...

class ListFacesRequest(_message.Message):
    __slots__ = ("scope", "filter", "page", "with_lists")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    WITH_LISTS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: FaceFilter
    page: _paging_pb2.Page
    with_lists: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[FaceFilter, _Mapping]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ..., with_lists: _Optional[bool] = ...) -> None: ...

class StreamFaceIdsRequest(_message.Message):
    __slots__ = ("scope", "filter", "batch_size")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: FaceFilter
    batch_size: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[FaceFilter, _Mapping]] = ..., batch_size: _Optional[int] = ...) -> None: ...

class StreamFaceIdsResponse(_message.Message):
    __slots__ = ("face_ids",)
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListFacesResponse(_message.Message):
    __slots__ = ("faces",)
    FACES_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[Face]
    def __init__(self, faces: _Optional[_Iterable[_Union[Face, _Mapping]]] = ...) -> None: ...

class CountFacesRequest(_message.Message):
    __slots__ = ("scope", "filter")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: FaceFilter
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[FaceFilter, _Mapping]] = ...) -> None: ...

class CountFacesResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class UpdateFaceRequest(_message.Message):
    __slots__ = ("scope", "face_id", "event_id", "user_data", "external_id", "avatar")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    AVATAR_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    face_id: str
    event_id: str
    user_data: str
    external_id: str
    avatar: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., face_id: _Optional[str] = ..., event_id: _Optional[str] = ..., user_data: _Optional[str] = ..., external_id: _Optional[str] = ..., avatar: _Optional[str] = ...) -> None: ...

class UpdateFaceResponse(_message.Message):
    __slots__ = ("face",)
    FACE_FIELD_NUMBER: _ClassVar[int]
    face: Face
    def __init__(self, face: _Optional[_Union[Face, _Mapping]] = ...) -> None: ...

class DeleteFaceRequest(_message.Message):
    __slots__ = ("scope", "face_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    face_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., face_id: _Optional[str] = ...) -> None: ...

class DeleteFaceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteFacesRequest(_message.Message):
    __slots__ = ("scope", "face_ids", "ignore_missing")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_MISSING_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    ignore_missing: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., face_ids: _Optional[_Iterable[str]] = ..., ignore_missing: _Optional[bool] = ...) -> None: ...

class DeleteFacesResponse(_message.Message):
    __slots__ = ("face_ids",)
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetFaceAttributeRequest(_message.Message):
    __slots__ = ("scope", "face_id", "descriptor_version")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    face_id: str
    descriptor_version: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., face_id: _Optional[str] = ..., descriptor_version: _Optional[int] = ...) -> None: ...

class GetFaceAttributeResponse(_message.Message):
    __slots__ = ("attribute",)
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    attribute: FaceAttribute
    def __init__(self, attribute: _Optional[_Union[FaceAttribute, _Mapping]] = ...) -> None: ...

class PutFaceAttributeRequest(_message.Message):
    __slots__ = ("scope", "face_id", "attribute")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    face_id: str
    attribute: FaceAttributeInput
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., face_id: _Optional[str] = ..., attribute: _Optional[_Union[FaceAttributeInput, _Mapping]] = ...) -> None: ...

class PutFaceAttributeResponse(_message.Message):
    __slots__ = ("attribute",)
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    attribute: FaceAttribute
    def __init__(self, attribute: _Optional[_Union[FaceAttribute, _Mapping]] = ...) -> None: ...

class DeleteFaceAttributeRequest(_message.Message):
    __slots__ = ("scope", "face_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    face_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., face_id: _Optional[str] = ...) -> None: ...

class DeleteFaceAttributeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CountFaceAttributesRequest(_message.Message):
    __slots__ = ("scope",)
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ...) -> None: ...

class CountFaceAttributesResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class StreamDescriptorsRequest(_message.Message):
    __slots__ = ("scope", "list_ids", "face_ids", "descriptor_version", "batch_size")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    descriptor_version: int
    batch_size: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., list_ids: _Optional[_Iterable[str]] = ..., face_ids: _Optional[_Iterable[str]] = ..., descriptor_version: _Optional[int] = ..., batch_size: _Optional[int] = ...) -> None: ...

class FaceDescriptor(_message.Message):
    __slots__ = ("face_id", "account_id", "descriptor", "version", "list_ids", "face")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    face_id: str
    account_id: str
    descriptor: bytes
    version: int
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    face: Face
    def __init__(self, face_id: _Optional[str] = ..., account_id: _Optional[str] = ..., descriptor: _Optional[bytes] = ..., version: _Optional[int] = ..., list_ids: _Optional[_Iterable[str]] = ..., face: _Optional[_Union[Face, _Mapping]] = ...) -> None: ...

class StreamDescriptorsResponse(_message.Message):
    __slots__ = ("descriptors",)
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    descriptors: _containers.RepeatedCompositeFieldContainer[FaceDescriptor]
    def __init__(self, descriptors: _Optional[_Iterable[_Union[FaceDescriptor, _Mapping]]] = ...) -> None: ...

class DeleteFaceDescriptorsRequest(_message.Message):
    __slots__ = ("scope", "version", "face_ids")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    version: int
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., version: _Optional[int] = ..., face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteFaceDescriptorsResponse(_message.Message):
    __slots__ = ("face_ids",)
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from luna.estimator.v1 import estimator_pb2 as _estimator_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Location(_message.Message):
    __slots__ = ("city", "area", "district", "street", "house_number", "longitude", "latitude")
    CITY_FIELD_NUMBER: _ClassVar[int]
    AREA_FIELD_NUMBER: _ClassVar[int]
    DISTRICT_FIELD_NUMBER: _ClassVar[int]
    STREET_FIELD_NUMBER: _ClassVar[int]
    HOUSE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    city: str
    area: str
    district: str
    street: str
    house_number: str
    longitude: float
    latitude: float
    def __init__(self, city: _Optional[str] = ..., area: _Optional[str] = ..., district: _Optional[str] = ..., street: _Optional[str] = ..., house_number: _Optional[str] = ..., longitude: _Optional[float] = ..., latitude: _Optional[float] = ...) -> None: ...

class EventMeta(_message.Message):
    __slots__ = ("source", "external_id", "user_data", "tags", "location", "track_id", "stream_id", "detect_time", "image_origin")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    DETECT_TIME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ORIGIN_FIELD_NUMBER: _ClassVar[int]
    source: str
    external_id: str
    user_data: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    location: Location
    track_id: str
    stream_id: str
    detect_time: _timestamp_pb2.Timestamp
    image_origin: str
    def __init__(self, source: _Optional[str] = ..., external_id: _Optional[str] = ..., user_data: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., track_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., detect_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., image_origin: _Optional[str] = ...) -> None: ...

class InputDescriptor(_message.Message):
    __slots__ = ("descriptor", "version")
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    descriptor: bytes
    version: int
    def __init__(self, descriptor: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class InputItem(_message.Message):
    __slots__ = ("image", "descriptor", "meta")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    image: _estimator_pb2.Image
    descriptor: InputDescriptor
    meta: EventMeta
    def __init__(self, image: _Optional[_Union[_estimator_pb2.Image, _Mapping]] = ..., descriptor: _Optional[_Union[InputDescriptor, _Mapping]] = ..., meta: _Optional[_Union[EventMeta, _Mapping]] = ...) -> None: ...

class GenerateEventsRequest(_message.Message):
    __slots__ = ("scope", "handler_id", "inputs", "image_type", "meta", "aggregate_attributes", "event_time", "event_end_time", "policies", "ignore_exif", "request_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_END_TIME_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    IGNORE_EXIF_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    handler_id: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputItem]
    image_type: _estimator_pb2.ImageType
    meta: EventMeta
    aggregate_attributes: bool
    event_time: _timestamp_pb2.Timestamp
    event_end_time: _timestamp_pb2.Timestamp
    policies: _struct_pb2.Struct
    ignore_exif: bool
    request_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., handler_id: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputItem, _Mapping]]] = ..., image_type: _Optional[_Union[_estimator_pb2.ImageType, str]] = ..., meta: _Optional[_Union[EventMeta, _Mapping]] = ..., aggregate_attributes: _Optional[bool] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policies: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., ignore_exif: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class GenerateEventsResponse(_message.Message):
    __slots__ = ("result", "event_ids")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Struct
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class VerifyReference(_message.Message):
    __slots__ = ("image", "descriptor")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    image: _estimator_pb2.Image
    descriptor: InputDescriptor
    def __init__(self, image: _Optional[_Union[_estimator_pb2.Image, _Mapping]] = ..., descriptor: _Optional[_Union[InputDescriptor, _Mapping]] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("scope", "verifier_id", "references", "image_type", "face_ids", "event_ids", "attribute_ids", "external_ids", "ignore_exif")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_IDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_EXIF_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    verifier_id: str
    references: _containers.RepeatedCompositeFieldContainer[VerifyReference]
    image_type: _estimator_pb2.ImageType
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    attribute_ids: _containers.RepeatedScalarFieldContainer[str]
    external_ids: _containers.RepeatedScalarFieldContainer[str]
    ignore_exif: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., verifier_id: _Optional[str] = ..., references: _Optional[_Iterable[_Union[VerifyReference, _Mapping]]] = ..., image_type: _Optional[_Union[_estimator_pb2.ImageType, str]] = ..., face_ids: _Optional[_Iterable[str]] = ..., event_ids: _Optional[_Iterable[str]] = ..., attribute_ids: _Optional[_Iterable[str]] = ..., external_ids: _Optional[_Iterable[str]] = ..., ignore_exif: _Optional[bool] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Struct
    def __init__(self, result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RawEntity(_message.Message):
    __slots__ = ("id", "descriptor")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    descriptor: InputDescriptor
    def __init__(self, id: _Optional[str] = ..., descriptor: _Optional[_Union[InputDescriptor, _Mapping]] = ...) -> None: ...

class VerifyRawRequest(_message.Message):
    __slots__ = ("scope", "verifier_id", "references", "candidates")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    verifier_id: str
    references: _containers.RepeatedCompositeFieldContainer[RawEntity]
    candidates: _containers.RepeatedCompositeFieldContainer[RawEntity]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., verifier_id: _Optional[str] = ..., references: _Optional[_Iterable[_Union[RawEntity, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[RawEntity, _Mapping]]] = ...) -> None: ...

class VerifyRawResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Struct
    def __init__(self, result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

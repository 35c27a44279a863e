import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Descriptor(_message.Message):
    __slots__ = ("descriptor", "version")
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    descriptor: bytes
    version: int
    def __init__(self, descriptor: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class BasicAttributes(_message.Message):
    __slots__ = ("age", "gender", "ethnicity")
    AGE_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    ETHNICITY_FIELD_NUMBER: _ClassVar[int]
    age: int
    gender: int
    ethnicity: int
    def __init__(self, age: _Optional[int] = ..., gender: _Optional[int] = ..., ethnicity: _Optional[int] = ...) -> None: ...

class AttributeData(_message.Message):
    __slots__ = ("descriptors", "descriptor_samples", "basic_attributes", "basic_attributes_samples")
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BASIC_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    BASIC_ATTRIBUTES_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    descriptors: _containers.RepeatedCompositeFieldContainer[Descriptor]
    descriptor_samples: _containers.RepeatedScalarFieldContainer[str]
    basic_attributes: BasicAttributes
    basic_attributes_samples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, descriptors: _Optional[_Iterable[_Union[Descriptor, _Mapping]]] = ..., descriptor_samples: _Optional[_Iterable[str]] = ..., basic_attributes: _Optional[_Union[BasicAttributes, _Mapping]] = ..., basic_attributes_samples: _Optional[_Iterable[str]] = ...) -> None: ...

class Attribute(_message.Message):
    __slots__ = ("attribute_id", "account_id", "data", "create_time", "expire_time")
    ATTRIBUTE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    attribute_id: str
    account_id: str
    data: AttributeData
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, attribute_id: _Optional[str] = ..., account_id: _Optional[str] = ..., data: _Optional[_Union[AttributeData, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAttributeRequest(_message.Message):
    __slots__ = ("scope", "data", "ttl_seconds")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    data: AttributeData
    ttl_seconds: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., data: _Optional[_Union[AttributeData, _Mapping]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class CreateAttributeResponse(_message.Message):
    __slots__ = ("attribute",)
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    attribute: Attribute
    def __init__(self, attribute: _Optional[_Union[Attribute, _Mapping]] = ...) -> None: ...

class GetAttributeRequest(_message.Message):
    __slots__ = ("scope", "attribute_id", "descriptor_version")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    attribute_id: str
    descriptor_version: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., attribute_id: _Optional[str] = ..., descriptor_version: _Optional[int] = ...) -> None: ...

class GetAttributeResponse(_message.Message):
    __slots__ = ("attribute",)
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    attribute: Attribute
    def __init__(self, attribute: _Optional[_Union[Attribute, _Mapping]] = ...) -> None: ...

class GetAttributesRequest(_message.Message):
    __slots__ = ("scope", "attribute_ids", "descriptor_version")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_IDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    attribute_ids: _containers.RepeatedScalarFieldContainer[str]
    descriptor_version: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., attribute_ids: _Optional[_Iterable[str]] = ..., descriptor_version: _Optional[int] = ...) -> None: ...

class GetAttributesResponse(_message.Message):
    __slots__ = ("attributes",)
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    def __init__(self, attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ...) -> None: ...

class DeleteAttributeRequest(_message.Message):
    __slots__ = ("scope", "attribute_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    attribute_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., attribute_id: _Optional[str] = ...) -> None: ...

class DeleteAttributeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAttributeSamplesRequest(_message.Message):
    __slots__ = ("scope", "attribute_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    attribute_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., attribute_id: _Optional[str] = ...) -> None: ...

class GetAttributeSamplesResponse(_message.Message):
    __slots__ = ("sample_ids",)
    SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    sample_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sample_ids: _Optional[_Iterable[str]] = ...) -> None: ...

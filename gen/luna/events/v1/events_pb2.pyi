import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from luna.common.v1 import info_pb2 as _info_pb2
from luna.common.v1 import paging_pb2 as _paging_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescriptorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DESCRIPTOR_KIND_UNSPECIFIED: _ClassVar[DescriptorKind]
    DESCRIPTOR_KIND_FACE: _ClassVar[DescriptorKind]
    DESCRIPTOR_KIND_BODY: _ClassVar[DescriptorKind]
DESCRIPTOR_KIND_UNSPECIFIED: DescriptorKind
DESCRIPTOR_KIND_FACE: DescriptorKind
DESCRIPTOR_KIND_BODY: DescriptorKind

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _info_pb2.ServiceInfo
    def __init__(self, info: _Optional[_Union[_info_pb2.ServiceInfo, _Mapping]] = ...) -> None: ...

class EventDescriptor(_message.Message):
    __slots__ = ("kind", "descriptor", "version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: DescriptorKind
    descriptor: bytes
    version: int
    def __init__(self, kind: _Optional[_Union[DescriptorKind, str]] = ..., descriptor: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class EventInput(_message.Message):
    __slots__ = ("event_id", "event", "descriptors")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event: _struct_pb2.Struct
    descriptors: _containers.RepeatedCompositeFieldContainer[EventDescriptor]
    def __init__(self, event_id: _Optional[str] = ..., event: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., descriptors: _Optional[_Iterable[_Union[EventDescriptor, _Mapping]]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "account_id", "handler_id", "create_time", "end_time", "data")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    account_id: str
    handler_id: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    data: _struct_pb2.Struct
    def __init__(self, event_id: _Optional[str] = ..., account_id: _Optional[str] = ..., handler_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SaveEventsRequest(_message.Message):
    __slots__ = ("scope", "handler_id", "events", "wait_saving", "from_client")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    HANDLER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    WAIT_SAVING_FIELD_NUMBER: _ClassVar[int]
    FROM_CLIENT_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    handler_id: str
    events: _containers.RepeatedCompositeFieldContainer[EventInput]
    wait_saving: bool
    from_client: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., handler_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[EventInput, _Mapping]]] = ..., wait_saving: _Optional[bool] = ..., from_client: _Optional[bool] = ...) -> None: ...

class SaveEventsResponse(_message.Message):
    __slots__ = ("event_ids",)
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("scope", "event_id", "targets")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    event_id: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., event_id: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class NullableStrings(_message.Message):
    __slots__ = ("values", "with_null")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    WITH_NULL_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    with_null: bool
    def __init__(self, values: _Optional[_Iterable[str]] = ..., with_null: _Optional[bool] = ...) -> None: ...

class NullableInts(_message.Message):
    __slots__ = ("values", "with_null")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    WITH_NULL_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    with_null: bool
    def __init__(self, values: _Optional[_Iterable[int]] = ..., with_null: _Optional[bool] = ...) -> None: ...

class MetaFilter(_message.Message):
    __slots__ = ("path", "operator", "type", "values", "with_null")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    WITH_NULL_FIELD_NUMBER: _ClassVar[int]
    path: str
    operator: str
    type: str
    values: _containers.RepeatedScalarFieldContainer[str]
    with_null: bool
    def __init__(self, path: _Optional[str] = ..., operator: _Optional[str] = ..., type: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., with_null: _Optional[bool] = ...) -> None: ...

class EventFilter(_message.Message):
    __slots__ = ("event_ids", "event_id_gte", "event_id_lt", "handler_ids", "face_ids", "external_ids", "create_time_gte", "create_time_lt", "end_time_gte", "end_time_lt", "sources", "stream_ids", "cities", "areas", "districts", "streets", "house_numbers", "track_ids", "user_data", "tags", "top_matching_candidates_label", "top_similar_object_ids", "top_similar_external_ids", "top_similar_object_similarity_gte", "top_similar_object_similarity_lt", "age_gte", "age_lt", "gender", "emotions", "masks", "ethnic_groups", "liveness", "deepfake", "apparent_gender", "apparent_age_gte", "apparent_age_lt", "headwear_states", "backpack_states", "headwear_apparent_colors", "sleeve_lengths", "upper_clothing_colors", "lower_garment_colors", "lower_garment_types", "shoes_apparent_colors", "origin_longitude", "origin_latitude", "longitude_delta", "latitude_delta", "geo_null", "meta", "no_default_window")
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_GTE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_LT_FIELD_NUMBER: _ClassVar[int]
    HANDLER_IDS_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    END_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    END_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    CITIES_FIELD_NUMBER: _ClassVar[int]
    AREAS_FIELD_NUMBER: _ClassVar[int]
    DISTRICTS_FIELD_NUMBER: _ClassVar[int]
    STREETS_FIELD_NUMBER: _ClassVar[int]
    HOUSE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    TRACK_IDS_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TOP_MATCHING_CANDIDATES_LABEL_FIELD_NUMBER: _ClassVar[int]
    TOP_SIMILAR_OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    TOP_SIMILAR_EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    TOP_SIMILAR_OBJECT_SIMILARITY_GTE_FIELD_NUMBER: _ClassVar[int]
    TOP_SIMILAR_OBJECT_SIMILARITY_LT_FIELD_NUMBER: _ClassVar[int]
    AGE_GTE_FIELD_NUMBER: _ClassVar[int]
    AGE_LT_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    EMOTIONS_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    ETHNIC_GROUPS_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    DEEPFAKE_FIELD_NUMBER: _ClassVar[int]
    APPARENT_GENDER_FIELD_NUMBER: _ClassVar[int]
    APPARENT_AGE_GTE_FIELD_NUMBER: _ClassVar[int]
    APPARENT_AGE_LT_FIELD_NUMBER: _ClassVar[int]
    HEADWEAR_STATES_FIELD_NUMBER: _ClassVar[int]
    BACKPACK_STATES_FIELD_NUMBER: _ClassVar[int]
    HEADWEAR_APPARENT_COLORS_FIELD_NUMBER: _ClassVar[int]
    SLEEVE_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    UPPER_CLOTHING_COLORS_FIELD_NUMBER: _ClassVar[int]
    LOWER_GARMENT_COLORS_FIELD_NUMBER: _ClassVar[int]
    LOWER_GARMENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    SHOES_APPARENT_COLORS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_DELTA_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_DELTA_FIELD_NUMBER: _ClassVar[int]
    GEO_NULL_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    NO_DEFAULT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    event_id_gte: str
    event_id_lt: str
    handler_ids: _containers.RepeatedScalarFieldContainer[str]
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    external_ids: _containers.RepeatedScalarFieldContainer[str]
    create_time_gte: _timestamp_pb2.Timestamp
    create_time_lt: _timestamp_pb2.Timestamp
    end_time_gte: _timestamp_pb2.Timestamp
    end_time_lt: _timestamp_pb2.Timestamp
    sources: NullableStrings
    stream_ids: NullableStrings
    cities: NullableStrings
    areas: NullableStrings
    districts: NullableStrings
    streets: NullableStrings
    house_numbers: NullableStrings
    track_ids: NullableStrings
    user_data: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    top_matching_candidates_label: str
    top_similar_object_ids: _containers.RepeatedScalarFieldContainer[str]
    top_similar_external_ids: _containers.RepeatedScalarFieldContainer[str]
    top_similar_object_similarity_gte: float
    top_similar_object_similarity_lt: float
    age_gte: int
    age_lt: int
    gender: NullableInts
    emotions: NullableInts
    masks: NullableInts
    ethnic_groups: NullableInts
    liveness: NullableInts
    deepfake: NullableInts
    apparent_gender: NullableInts
    apparent_age_gte: int
    apparent_age_lt: int
    headwear_states: NullableInts
    backpack_states: NullableInts
    headwear_apparent_colors: NullableStrings
    sleeve_lengths: NullableStrings
    upper_clothing_colors: NullableStrings
    lower_garment_colors: NullableStrings
    lower_garment_types: NullableStrings
    shoes_apparent_colors: NullableStrings
    origin_longitude: float
    origin_latitude: float
    longitude_delta: float
    latitude_delta: float
    geo_null: bool
    meta: _containers.RepeatedCompositeFieldContainer[MetaFilter]
    no_default_window: bool
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ..., event_id_gte: _Optional[str] = ..., event_id_lt: _Optional[str] = ..., handler_ids: _Optional[_Iterable[str]] = ..., face_ids: _Optional[_Iterable[str]] = ..., external_ids: _Optional[_Iterable[str]] = ..., create_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sources: _Optional[_Union[NullableStrings, _Mapping]] = ..., stream_ids: _Optional[_Union[NullableStrings, _Mapping]] = ..., cities: _Optional[_Union[NullableStrings, _Mapping]] = ..., areas: _Optional[_Union[NullableStrings, _Mapping]] = ..., districts: _Optional[_Union[NullableStrings, _Mapping]] = ..., streets: _Optional[_Union[NullableStrings, _Mapping]] = ..., house_numbers: _Optional[_Union[NullableStrings, _Mapping]] = ..., track_ids: _Optional[_Union[NullableStrings, _Mapping]] = ..., user_data: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., top_matching_candidates_label: _Optional[str] = ..., top_similar_object_ids: _Optional[_Iterable[str]] = ..., top_similar_external_ids: _Optional[_Iterable[str]] = ..., top_similar_object_similarity_gte: _Optional[float] = ..., top_similar_object_similarity_lt: _Optional[float] = ..., age_gte: _Optional[int] = ..., age_lt: _Optional[int] = ..., gender: _Optional[_Union[NullableInts, _Mapping]] = ..., emotions: _Optional[_Union[NullableInts, _Mapping]] = ..., masks: _Optional[_Union[NullableInts, _Mapping]] = ..., ethnic_groups: _Optional[_Union[NullableInts, _Mapping]] = ..., liveness: _Optional[_Union[NullableInts, _Mapping]] = ..., deepfake: _Optional[_Union[NullableInts, _Mapping]] = ..., apparent_gender: _Optional[_Union[NullableInts, _Mapping]] = ..., apparent_age_gte: _Optional[int] = ..., apparent_age_lt: _Optional[int] = ..., headwear_states: _Optional[_Union[NullableInts, _Mapping]] = ..., backpack_states: _Optional[_Union[NullableInts, _Mapping]] = ..., headwear_apparent_colors: _Optional[_Union[NullableStrings, _Mapping]] = ..., sleeve_lengths: _Optional[_Union[NullableStrings, _Mapping]] = ..., upper_clothing_colors: _Optional[_Union[NullableStrings, _Mapping]] = ..., lower_garment_colors: _Optional[_Union[NullableStrings, _Mapping]] = ..., lower_garment_types: _Optional[_Union[NullableStrings, _Mapping]] = ..., shoes_apparent_colors: _Optional[_Union[NullableStrings, _Mapping]] = ..., origin_longitude: _Optional[float] = ..., origin_latitude: _Optional[float] = ..., longitude_delta: _Optional[float] = ..., latitude_delta: _Optional[float] = ..., geo_null: _Optional[bool] = ..., meta: _Optional[_Iterable[_Union[MetaFilter, _Mapping]]] = ..., no_default_window: _Optional[bool] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("scope", "filter", "targets", "page", "order")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: EventFilter
    targets: _containers.RepeatedScalarFieldContainer[str]
    page: _paging_pb2.Page
    order: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ..., targets: _Optional[_Iterable[str]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ..., order: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class CountEventsRequest(_message.Message):
    __slots__ = ("scope", "filter")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: EventFilter
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ...) -> None: ...

class CountEventsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class StatTarget(_message.Message):
    __slots__ = ("column", "aggregator")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    column: str
    aggregator: str
    def __init__(self, column: _Optional[str] = ..., aggregator: _Optional[str] = ...) -> None: ...

class StatFilter(_message.Message):
    __slots__ = ("column", "operator", "value")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    column: str
    operator: str
    value: _struct_pb2.Value
    def __init__(self, column: _Optional[str] = ..., operator: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class GetEventStatisticsRequest(_message.Message):
    __slots__ = ("scope", "targets", "filters", "period_start", "period_end", "group_by")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    targets: _containers.RepeatedCompositeFieldContainer[StatTarget]
    filters: _containers.RepeatedCompositeFieldContainer[StatFilter]
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    group_by: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., targets: _Optional[_Iterable[_Union[StatTarget, _Mapping]]] = ..., filters: _Optional[_Iterable[_Union[StatFilter, _Mapping]]] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[str] = ...) -> None: ...

class GetEventStatisticsResponse(_message.Message):
    __slots__ = ("fields", "stats")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedScalarFieldContainer[str]
    stats: _containers.RepeatedCompositeFieldContainer[_struct_pb2.ListValue]
    def __init__(self, fields: _Optional[_Iterable[str]] = ..., stats: _Optional[_Iterable[_Union[_struct_pb2.ListValue, _Mapping]]] = ...) -> None: ...

class GetEventDescriptorsRequest(_message.Message):
    __slots__ = ("scope", "event_ids", "kind", "version", "event_id_gt", "limit")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_GT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    kind: DescriptorKind
    version: int
    event_id_gt: str
    limit: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., event_ids: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[DescriptorKind, str]] = ..., version: _Optional[int] = ..., event_id_gt: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class EventDescriptorItem(_message.Message):
    __slots__ = ("event_id", "descriptor", "version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    descriptor: bytes
    version: int
    def __init__(self, event_id: _Optional[str] = ..., descriptor: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class GetEventDescriptorsResponse(_message.Message):
    __slots__ = ("descriptors",)
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    descriptors: _containers.RepeatedCompositeFieldContainer[EventDescriptorItem]
    def __init__(self, descriptors: _Optional[_Iterable[_Union[EventDescriptorItem, _Mapping]]] = ...) -> None: ...

class SelectEventCandidatesRequest(_message.Message):
    __slots__ = ("scope", "filters", "kind", "version", "limit")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filters: _struct_pb2.Struct
    kind: DescriptorKind
    version: int
    limit: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kind: _Optional[_Union[DescriptorKind, str]] = ..., version: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class EventCandidate(_message.Message):
    __slots__ = ("event_id", "descriptor", "version", "event")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    descriptor: bytes
    version: int
    event: _struct_pb2.Struct
    def __init__(self, event_id: _Optional[str] = ..., descriptor: _Optional[bytes] = ..., version: _Optional[int] = ..., event: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SelectEventCandidatesResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[EventCandidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[EventCandidate, _Mapping]]] = ...) -> None: ...

class DeleteEventsRequest(_message.Message):
    __slots__ = ("scope", "event_ids")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeletedEvent(_message.Message):
    __slots__ = ("event_id", "face_sample_ids", "body_sample_ids", "image_origins")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    BODY_SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    face_sample_ids: _containers.RepeatedScalarFieldContainer[str]
    body_sample_ids: _containers.RepeatedScalarFieldContainer[str]
    image_origins: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., face_sample_ids: _Optional[_Iterable[str]] = ..., body_sample_ids: _Optional[_Iterable[str]] = ..., image_origins: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[DeletedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[DeletedEvent, _Mapping]]] = ...) -> None: ...

class DeleteEventDescriptorsRequest(_message.Message):
    __slots__ = ("scope", "kind", "version", "event_ids")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    kind: DescriptorKind
    version: int
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., kind: _Optional[_Union[DescriptorKind, str]] = ..., version: _Optional[int] = ..., event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteEventDescriptorsResponse(_message.Message):
    __slots__ = ("event_ids",)
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PutEventDescriptorsRequest(_message.Message):
    __slots__ = ("scope", "kind", "descriptors")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    kind: DescriptorKind
    descriptors: _containers.RepeatedCompositeFieldContainer[EventDescriptorItem]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., kind: _Optional[_Union[DescriptorKind, str]] = ..., descriptors: _Optional[_Iterable[_Union[EventDescriptorItem, _Mapping]]] = ...) -> None: ...

class PutEventDescriptorsResponse(_message.Message):
    __slots__ = ("event_ids",)
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamEventIdsRequest(_message.Message):
    __slots__ = ("scope", "filter", "batch_size", "stride")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: EventFilter
    batch_size: int
    stride: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ..., batch_size: _Optional[int] = ..., stride: _Optional[int] = ...) -> None: ...

class StreamEventIdsResponse(_message.Message):
    __slots__ = ("event_ids",)
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteEventsWhereRequest(_message.Message):
    __slots__ = ("scope", "filter", "receipt")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: EventFilter
    receipt: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ..., receipt: _Optional[str] = ...) -> None: ...

class DeleteEventsWhereResponse(_message.Message):
    __slots__ = ("events_json", "body_sample_ids")
    EVENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    BODY_SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    events_json: bytes
    body_sample_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, events_json: _Optional[bytes] = ..., body_sample_ids: _Optional[_Iterable[str]] = ...) -> None: ...

import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from luna.common.v1 import info_pb2 as _info_pb2
from luna.faces.v1 import faces_pb2 as _faces_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _info_pb2.ServiceInfo
    def __init__(self, info: _Optional[_Union[_info_pb2.ServiceInfo, _Mapping]] = ...) -> None: ...

class RawDescriptor(_message.Message):
    __slots__ = ("descriptor", "version")
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    descriptor: bytes
    version: int
    def __init__(self, descriptor: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class Reference(_message.Message):
    __slots__ = ("id", "face_id", "attribute_id", "external_id", "descriptor", "event_id", "event_external_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    face_id: str
    attribute_id: str
    external_id: str
    descriptor: RawDescriptor
    event_id: str
    event_external_id: str
    def __init__(self, id: _Optional[str] = ..., face_id: _Optional[str] = ..., attribute_id: _Optional[str] = ..., external_id: _Optional[str] = ..., descriptor: _Optional[_Union[RawDescriptor, _Mapping]] = ..., event_id: _Optional[str] = ..., event_external_id: _Optional[str] = ...) -> None: ...

class FaceCandidates(_message.Message):
    __slots__ = ("list_id", "face_ids", "external_ids", "user_data", "event_id", "create_time_gte", "create_time_lt", "face_id_gte", "face_id_lt", "limit", "threshold")
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_GTE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_LT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    list_id: str
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    external_ids: _containers.RepeatedScalarFieldContainer[str]
    user_data: str
    event_id: str
    create_time_gte: _timestamp_pb2.Timestamp
    create_time_lt: _timestamp_pb2.Timestamp
    face_id_gte: str
    face_id_lt: str
    limit: int
    threshold: float
    def __init__(self, list_id: _Optional[str] = ..., face_ids: _Optional[_Iterable[str]] = ..., external_ids: _Optional[_Iterable[str]] = ..., user_data: _Optional[str] = ..., event_id: _Optional[str] = ..., create_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., face_id_gte: _Optional[str] = ..., face_id_lt: _Optional[str] = ..., limit: _Optional[int] = ..., threshold: _Optional[float] = ...) -> None: ...

class MatchFacesRequest(_message.Message):
    __slots__ = ("scope", "references", "candidates", "event_candidates", "descriptor_version", "min_applied_seq")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    EVENT_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_APPLIED_SEQ_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    references: _containers.RepeatedCompositeFieldContainer[Reference]
    candidates: _containers.RepeatedCompositeFieldContainer[FaceCandidates]
    event_candidates: _containers.RepeatedCompositeFieldContainer[EventCandidates]
    descriptor_version: int
    min_applied_seq: int
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., references: _Optional[_Iterable[_Union[Reference, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[FaceCandidates, _Mapping]]] = ..., event_candidates: _Optional[_Iterable[_Union[EventCandidates, _Mapping]]] = ..., descriptor_version: _Optional[int] = ..., min_applied_seq: _Optional[int] = ...) -> None: ...

class EventCandidates(_message.Message):
    __slots__ = ("filters", "limit", "threshold")
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    filters: _struct_pb2.Struct
    limit: int
    threshold: float
    def __init__(self, filters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., limit: _Optional[int] = ..., threshold: _Optional[float] = ...) -> None: ...

class EventMatch(_message.Message):
    __slots__ = ("event", "similarity")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    event: _struct_pb2.Struct
    similarity: float
    def __init__(self, event: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., similarity: _Optional[float] = ...) -> None: ...

class EventCandidatesResult(_message.Message):
    __slots__ = ("matches", "total_found")
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FOUND_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[EventMatch]
    total_found: int
    def __init__(self, matches: _Optional[_Iterable[_Union[EventMatch, _Mapping]]] = ..., total_found: _Optional[int] = ...) -> None: ...

class FaceMatch(_message.Message):
    __slots__ = ("face", "similarity")
    FACE_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    face: _faces_pb2.Face
    similarity: float
    def __init__(self, face: _Optional[_Union[_faces_pb2.Face, _Mapping]] = ..., similarity: _Optional[float] = ...) -> None: ...

class CandidatesResult(_message.Message):
    __slots__ = ("matches", "total_found")
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FOUND_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[FaceMatch]
    total_found: int
    def __init__(self, matches: _Optional[_Iterable[_Union[FaceMatch, _Mapping]]] = ..., total_found: _Optional[int] = ...) -> None: ...

class ReferenceResult(_message.Message):
    __slots__ = ("reference", "face_id", "candidates", "reference_index", "event_id", "event_candidates")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    reference: Reference
    face_id: str
    candidates: _containers.RepeatedCompositeFieldContainer[CandidatesResult]
    reference_index: int
    event_id: str
    event_candidates: _containers.RepeatedCompositeFieldContainer[EventCandidatesResult]
    def __init__(self, reference: _Optional[_Union[Reference, _Mapping]] = ..., face_id: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[CandidatesResult, _Mapping]]] = ..., reference_index: _Optional[int] = ..., event_id: _Optional[str] = ..., event_candidates: _Optional[_Iterable[_Union[EventCandidatesResult, _Mapping]]] = ...) -> None: ...

class MatchFacesResponse(_message.Message):
    __slots__ = ("results", "applied_seq", "stream_position")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_SEQ_FIELD_NUMBER: _ClassVar[int]
    STREAM_POSITION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReferenceResult]
    applied_seq: int
    stream_position: int
    def __init__(self, results: _Optional[_Iterable[_Union[ReferenceResult, _Mapping]]] = ..., applied_seq: _Optional[int] = ..., stream_position: _Optional[int] = ...) -> None: ...

class RawEntity(_message.Message):
    __slots__ = ("id", "descriptor")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    descriptor: RawDescriptor
    def __init__(self, id: _Optional[str] = ..., descriptor: _Optional[_Union[RawDescriptor, _Mapping]] = ...) -> None: ...

class MatchRawRequest(_message.Message):
    __slots__ = ("references", "candidates")
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    references: _containers.RepeatedCompositeFieldContainer[RawEntity]
    candidates: _containers.RepeatedCompositeFieldContainer[RawEntity]
    def __init__(self, references: _Optional[_Iterable[_Union[RawEntity, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[RawEntity, _Mapping]]] = ...) -> None: ...

class RawMatch(_message.Message):
    __slots__ = ("candidate_id", "similarity")
    CANDIDATE_ID_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    candidate_id: str
    similarity: float
    def __init__(self, candidate_id: _Optional[str] = ..., similarity: _Optional[float] = ...) -> None: ...

class RawReferenceResult(_message.Message):
    __slots__ = ("reference_id", "matches")
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    reference_id: str
    matches: _containers.RepeatedCompositeFieldContainer[RawMatch]
    def __init__(self, reference_id: _Optional[str] = ..., matches: _Optional[_Iterable[_Union[RawMatch, _Mapping]]] = ...) -> None: ...

class MatchRawResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RawReferenceResult]
    def __init__(self, results: _Optional[_Iterable[_Union[RawReferenceResult, _Mapping]]] = ...) -> None: ...

class GetIndexStatsRequest(_message.Message):
    __slots__ = ("descriptor_version",)
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    descriptor_version: int
    def __init__(self, descriptor_version: _Optional[int] = ...) -> None: ...

class CollectionStats(_message.Message):
    __slots__ = ("kind", "account_id", "list_id", "live", "mode", "delta", "deleted")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    account_id: str
    list_id: str
    live: int
    mode: str
    delta: int
    deleted: int
    def __init__(self, kind: _Optional[str] = ..., account_id: _Optional[str] = ..., list_id: _Optional[str] = ..., live: _Optional[int] = ..., mode: _Optional[str] = ..., delta: _Optional[int] = ..., deleted: _Optional[int] = ...) -> None: ...

class GetIndexStatsResponse(_message.Message):
    __slots__ = ("faces", "descriptor_version", "applied_seq", "snapshot_seq", "collections", "shard_map_version", "shard_partition")
    FACES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_SEQ_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_SEQ_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_PARTITION_FIELD_NUMBER: _ClassVar[int]
    faces: int
    descriptor_version: int
    applied_seq: int
    snapshot_seq: int
    collections: _containers.RepeatedCompositeFieldContainer[CollectionStats]
    shard_map_version: int
    shard_partition: str
    def __init__(self, faces: _Optional[int] = ..., descriptor_version: _Optional[int] = ..., applied_seq: _Optional[int] = ..., snapshot_seq: _Optional[int] = ..., collections: _Optional[_Iterable[_Union[CollectionStats, _Mapping]]] = ..., shard_map_version: _Optional[int] = ..., shard_partition: _Optional[str] = ...) -> None: ...

class RebuildIndexRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RebuildIndexResponse(_message.Message):
    __slots__ = ("faces", "seconds")
    FACES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    faces: int
    seconds: float
    def __init__(self, faces: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class SaveSnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SaveSnapshotResponse(_message.Message):
    __slots__ = ("path", "stream_seq", "seconds")
    PATH_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQ_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    path: str
    stream_seq: int
    seconds: float
    def __init__(self, path: _Optional[str] = ..., stream_seq: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

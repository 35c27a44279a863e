import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import account_pb2 as _account_pb2
from luna.common.v1 import paging_pb2 as _paging_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class List(_message.Message):
    __slots__ = ("list_id", "account_id", "user_data", "create_time", "last_update_time")
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    list_id: str
    account_id: str
    user_data: str
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    def __init__(self, list_id: _Optional[str] = ..., account_id: _Optional[str] = ..., user_data: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListFilter(_message.Message):
    __slots__ = ("list_ids", "user_data", "user_data_eq", "create_time_gte", "create_time_lt", "last_update_time_gte", "last_update_time_lt", "list_id_gte", "list_id_lt")
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_EQ_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_GTE_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_LT_FIELD_NUMBER: _ClassVar[int]
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    user_data: str
    user_data_eq: str
    create_time_gte: _timestamp_pb2.Timestamp
    create_time_lt: _timestamp_pb2.Timestamp
    last_update_time_gte: _timestamp_pb2.Timestamp
    last_update_time_lt: _timestamp_pb2.Timestamp
    list_id_gte: str
    list_id_lt: str
    def __init__(self, list_ids: _Optional[_Iterable[str]] = ..., user_data: _Optional[str] = ..., user_data_eq: _Optional[str] = ..., create_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., list_id_gte: _Optional[str] = ..., list_id_lt: _Optional[str] = ...) -> None: ...

class CreateListRequest(_message.Message):
    __slots__ = ("scope", "user_data")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    user_data: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., user_data: _Optional[str] = ...) -> None: ...

class CreateListResponse(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: List
    def __init__(self, list: _Optional[_Union[List, _Mapping]] = ...) -> None: ...

class GetListRequest(_message.Message):
    __slots__ = ("scope", "list_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    list_id: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., list_id: _Optional[str] = ...) -> None: ...

class GetListResponse(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: List
    def __init__(self, list: _Optional[_Union[List, _Mapping]] = ...) -> None: ...

class ListListsRequest(_message.Message):
    __slots__ = ("scope", "filter", "page")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: ListFilter
    page: _paging_pb2.Page
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[ListFilter, _Mapping]] = ..., page: _Optional[_Union[_paging_pb2.Page, _Mapping]] = ...) -> None: ...

class ListListsResponse(_message.Message):
    __slots__ = ("lists",)
    LISTS_FIELD_NUMBER: _ClassVar[int]
    lists: _containers.RepeatedCompositeFieldContainer[List]
    def __init__(self, lists: _Optional[_Iterable[_Union[List, _Mapping]]] = ...) -> None: ...

class CountListsRequest(_message.Message):
    __slots__ = ("scope", "filter")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    filter: ListFilter
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., filter: _Optional[_Union[ListFilter, _Mapping]] = ...) -> None: ...

class CountListsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class UpdateListRequest(_message.Message):
    __slots__ = ("scope", "list_id", "user_data")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    list_id: str
    user_data: str
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., list_id: _Optional[str] = ..., user_data: _Optional[str] = ...) -> None: ...

class UpdateListResponse(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: List
    def __init__(self, list: _Optional[_Union[List, _Mapping]] = ...) -> None: ...

class DeleteListRequest(_message.Message):
    __slots__ = ("scope", "list_id", "with_faces")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    WITH_FACES_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    list_id: str
    with_faces: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., list_id: _Optional[str] = ..., with_faces: _Optional[bool] = ...) -> None: ...

class DeleteListResponse(_message.Message):
    __slots__ = ("deleted_faces",)
    DELETED_FACES_FIELD_NUMBER: _ClassVar[int]
    deleted_faces: int
    def __init__(self, deleted_faces: _Optional[int] = ...) -> None: ...

class DeleteListsRequest(_message.Message):
    __slots__ = ("scope", "list_ids", "with_faces")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    WITH_FACES_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    list_ids: _containers.RepeatedScalarFieldContainer[str]
    with_faces: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., list_ids: _Optional[_Iterable[str]] = ..., with_faces: _Optional[bool] = ...) -> None: ...

class DeleteListsResponse(_message.Message):
    __slots__ = ("deleted_faces",)
    DELETED_FACES_FIELD_NUMBER: _ClassVar[int]
    deleted_faces: int
    def __init__(self, deleted_faces: _Optional[int] = ...) -> None: ...

class AttachFacesRequest(_message.Message):
    __slots__ = ("scope", "list_id", "face_ids", "bulk")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    BULK_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    list_id: str
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    bulk: bool
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., list_id: _Optional[str] = ..., face_ids: _Optional[_Iterable[str]] = ..., bulk: _Optional[bool] = ...) -> None: ...

class AttachFacesResponse(_message.Message):
    __slots__ = ("attached_face_ids",)
    ATTACHED_FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    attached_face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, attached_face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DetachFacesRequest(_message.Message):
    __slots__ = ("scope", "list_id", "face_ids")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    scope: _account_pb2.AccountScope
    list_id: str
    face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scope: _Optional[_Union[_account_pb2.AccountScope, _Mapping]] = ..., list_id: _Optional[str] = ..., face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DetachFacesResponse(_message.Message):
    __slots__ = ("detached_face_ids",)
    DETACHED_FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    detached_face_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, detached_face_ids: _Optional[_Iterable[str]] = ...) -> None: ...

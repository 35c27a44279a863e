import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luna.common.v1 import info_pb2 as _info_pb2
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

class Task(_message.Message):
    __slots__ = ("task_id", "account_id", "task_type", "task_status", "description", "content_json", "create_time", "end_time", "last_update_time", "result_id", "count_task_parts_done", "count_task_parts_all", "schedule_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    TASK_STATUS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_TASK_PARTS_DONE_FIELD_NUMBER: _ClassVar[int]
    COUNT_TASK_PARTS_ALL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    account_id: str
    task_type: int
    task_status: int
    description: str
    content_json: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    result_id: str
    count_task_parts_done: int
    count_task_parts_all: int
    schedule_id: int
    def __init__(self, task_id: _Optional[int] = ..., account_id: _Optional[str] = ..., task_type: _Optional[int] = ..., task_status: _Optional[int] = ..., description: _Optional[str] = ..., content_json: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., result_id: _Optional[str] = ..., count_task_parts_done: _Optional[int] = ..., count_task_parts_all: _Optional[int] = ..., schedule_id: _Optional[int] = ...) -> None: ...

class Subtask(_message.Message):
    __slots__ = ("subtask_id", "task_id", "result_id", "create_time", "end_time", "subtask_status", "content_json")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    subtask_id: int
    task_id: int
    result_id: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    subtask_status: int
    content_json: str
    def __init__(self, subtask_id: _Optional[int] = ..., task_id: _Optional[int] = ..., result_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subtask_status: _Optional[int] = ..., content_json: _Optional[str] = ...) -> None: ...

class TaskError(_message.Message):
    __slots__ = ("error_id", "task_id", "subtask_id", "error_code", "description", "detail", "additional_info", "error_time", "status_code", "task_type", "account_id")
    ERROR_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_INFO_FIELD_NUMBER: _ClassVar[int]
    ERROR_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    error_id: int
    task_id: int
    subtask_id: int
    error_code: int
    description: str
    detail: str
    additional_info: str
    error_time: _timestamp_pb2.Timestamp
    status_code: int
    task_type: int
    account_id: str
    def __init__(self, error_id: _Optional[int] = ..., task_id: _Optional[int] = ..., subtask_id: _Optional[int] = ..., error_code: _Optional[int] = ..., description: _Optional[str] = ..., detail: _Optional[str] = ..., additional_info: _Optional[str] = ..., error_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_code: _Optional[int] = ..., task_type: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("account_id", "task_type", "description", "content_json", "schedule_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    task_type: int
    description: str
    content_json: str
    schedule_id: int
    def __init__(self, account_id: _Optional[str] = ..., task_type: _Optional[int] = ..., description: _Optional[str] = ..., content_json: _Optional[str] = ..., schedule_id: _Optional[int] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    def __init__(self, task_id: _Optional[int] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id", "account_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    account_id: str
    def __init__(self, task_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class TaskFilter(_message.Message):
    __slots__ = ("account_id", "task_ids", "task_type", "task_status", "create_time_gte", "create_time_lt", "end_time_gte", "end_time_lt", "result_id", "schedule_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    TASK_STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    END_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    END_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    task_ids: _containers.RepeatedScalarFieldContainer[int]
    task_type: int
    task_status: int
    create_time_gte: _timestamp_pb2.Timestamp
    create_time_lt: _timestamp_pb2.Timestamp
    end_time_gte: _timestamp_pb2.Timestamp
    end_time_lt: _timestamp_pb2.Timestamp
    result_id: str
    schedule_id: int
    def __init__(self, account_id: _Optional[str] = ..., task_ids: _Optional[_Iterable[int]] = ..., task_type: _Optional[int] = ..., task_status: _Optional[int] = ..., create_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., result_id: _Optional[str] = ..., schedule_id: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("filter", "page", "page_size")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    filter: TaskFilter
    page: int
    page_size: int
    def __init__(self, filter: _Optional[_Union[TaskFilter, _Mapping]] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class CountTasksRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: TaskFilter
    def __init__(self, filter: _Optional[_Union[TaskFilter, _Mapping]] = ...) -> None: ...

class CountTasksResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id", "account_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    account_id: str
    def __init__(self, task_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("task_id", "account_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    account_id: str
    def __init__(self, task_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTaskResultRequest(_message.Message):
    __slots__ = ("task_id", "account_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    account_id: str
    def __init__(self, task_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class GetTaskResultResponse(_message.Message):
    __slots__ = ("content_type", "body", "filename")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    body: bytes
    filename: str
    def __init__(self, content_type: _Optional[str] = ..., body: _Optional[bytes] = ..., filename: _Optional[str] = ...) -> None: ...

class ListSubtasksRequest(_message.Message):
    __slots__ = ("task_id", "account_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    account_id: str
    def __init__(self, task_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class ListSubtasksResponse(_message.Message):
    __slots__ = ("subtasks",)
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    subtasks: _containers.RepeatedCompositeFieldContainer[Subtask]
    def __init__(self, subtasks: _Optional[_Iterable[_Union[Subtask, _Mapping]]] = ...) -> None: ...

class ErrorFilter(_message.Message):
    __slots__ = ("account_id", "task_ids", "error_ids", "error_code", "task_type", "status_code", "error_time_gte", "error_time_lt")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_IDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    task_ids: _containers.RepeatedScalarFieldContainer[int]
    error_ids: _containers.RepeatedScalarFieldContainer[int]
    error_code: int
    task_type: int
    status_code: int
    error_time_gte: _timestamp_pb2.Timestamp
    error_time_lt: _timestamp_pb2.Timestamp
    def __init__(self, account_id: _Optional[str] = ..., task_ids: _Optional[_Iterable[int]] = ..., error_ids: _Optional[_Iterable[int]] = ..., error_code: _Optional[int] = ..., task_type: _Optional[int] = ..., status_code: _Optional[int] = ..., error_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListErrorsRequest(_message.Message):
    __slots__ = ("filter", "page", "page_size")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    filter: ErrorFilter
    page: int
    page_size: int
    def __init__(self, filter: _Optional[_Union[ErrorFilter, _Mapping]] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListErrorsResponse(_message.Message):
    __slots__ = ("errors",)
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[TaskError]
    def __init__(self, errors: _Optional[_Iterable[_Union[TaskError, _Mapping]]] = ...) -> None: ...

class CountErrorsRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: ErrorFilter
    def __init__(self, filter: _Optional[_Union[ErrorFilter, _Mapping]] = ...) -> None: ...

class CountErrorsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class GetErrorRequest(_message.Message):
    __slots__ = ("error_id", "account_id")
    ERROR_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    error_id: int
    account_id: str
    def __init__(self, error_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class GetErrorResponse(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: TaskError
    def __init__(self, error: _Optional[_Union[TaskError, _Mapping]] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("schedule_id", "account_id", "task_json", "trigger_json", "behaviour_json", "status", "next_run_time", "create_time", "last_update_time", "task_ids")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_JSON_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_JSON_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_JSON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    schedule_id: int
    account_id: str
    task_json: str
    trigger_json: str
    behaviour_json: str
    status: str
    next_run_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    last_update_time: _timestamp_pb2.Timestamp
    task_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, schedule_id: _Optional[int] = ..., account_id: _Optional[str] = ..., task_json: _Optional[str] = ..., trigger_json: _Optional[str] = ..., behaviour_json: _Optional[str] = ..., status: _Optional[str] = ..., next_run_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., task_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class CreateScheduleRequest(_message.Message):
    __slots__ = ("account_id", "schedule_json")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_JSON_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    schedule_json: str
    def __init__(self, account_id: _Optional[str] = ..., schedule_json: _Optional[str] = ...) -> None: ...

class CreateScheduleResponse(_message.Message):
    __slots__ = ("schedule_id",)
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: int
    def __init__(self, schedule_id: _Optional[int] = ...) -> None: ...

class GetScheduleRequest(_message.Message):
    __slots__ = ("schedule_id", "account_id")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: int
    account_id: str
    def __init__(self, schedule_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class GetScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ("account_id", "task_type", "create_time_gte", "create_time_lt", "page", "page_size")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_GTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_LT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    task_type: int
    create_time_gte: _timestamp_pb2.Timestamp
    create_time_lt: _timestamp_pb2.Timestamp
    page: int
    page_size: int
    def __init__(self, account_id: _Optional[str] = ..., task_type: _Optional[int] = ..., create_time_gte: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time_lt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules",)
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ...) -> None: ...

class ReplaceScheduleRequest(_message.Message):
    __slots__ = ("schedule_id", "account_id", "schedule_json")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_JSON_FIELD_NUMBER: _ClassVar[int]
    schedule_id: int
    account_id: str
    schedule_json: str
    def __init__(self, schedule_id: _Optional[int] = ..., account_id: _Optional[str] = ..., schedule_json: _Optional[str] = ...) -> None: ...

class ReplaceScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetScheduleStatusRequest(_message.Message):
    __slots__ = ("schedule_id", "account_id", "action")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    schedule_id: int
    account_id: str
    action: str
    def __init__(self, schedule_id: _Optional[int] = ..., account_id: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class SetScheduleStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("schedule_id", "account_id")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: int
    account_id: str
    def __init__(self, schedule_id: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

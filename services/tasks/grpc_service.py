"""TasksService: the thin gRPC adapter over the store and the engine."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
from luna.common.v1 import info_pb2
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from services.common import errors, times
from services.common.pbjson import dataclass_of
from services.common.version import VERSION
from services.tasks import engine
from services.tasks.kinds import Deps
from services.tasks.store import ErrorFilter, TaskFilter, TaskStore

Ctx = grpc.aio.ServicerContext


def _ts(value: Any) -> Any:
    return times.to_timestamp(value) if value is not None else None


def task_pb(row: dict[str, Any]) -> tasks_pb2.Task:
    return tasks_pb2.Task(
        task_id=row["task_id"],
        account_id=str(row["account_id"]),
        task_type=row["task_type"],
        task_status=row["task_status"],
        description=row["description"],
        content_json=orjson.dumps(row["content"]).decode(),
        create_time=_ts(row["create_time"]),
        end_time=_ts(row["end_time"]),
        last_update_time=_ts(row["last_update_time"]),
        result_id=str(row["result_id"] or ""),
        count_task_parts_done=row["parts_done"],
        count_task_parts_all=row["parts_all"],
        schedule_id=row["schedule_id"] or 0,
    )


def error_pb(row: dict[str, Any]) -> tasks_pb2.TaskError:
    return tasks_pb2.TaskError(
        error_id=row["error_id"],
        task_id=row["task_id"],
        subtask_id=row["subtask_id"] or 0,
        error_code=row["error_code"],
        description=row["description"],
        detail=row["detail"],
        additional_info=row["additional_info"] or "",
        error_time=_ts(row["error_time"]),
        status_code=row["status_code"],
        task_type=row["task_type"],
        account_id=str(row["account_id"]),
    )


def task_filter(f: tasks_pb2.TaskFilter) -> TaskFilter:
    return dataclass_of(TaskFilter, f)


def error_filter(f: tasks_pb2.ErrorFilter) -> ErrorFilter:
    return dataclass_of(ErrorFilter, f)


def _page(page: int, page_size: int) -> tuple[int, int]:
    return max(page, 1), min(max(page_size or 10, 1), 1000)


def schedule_pb(row: dict[str, Any]) -> tasks_pb2.Schedule:
    return tasks_pb2.Schedule(
        schedule_id=row["schedule_id"],
        account_id=str(row["account_id"]),
        task_json=orjson.dumps(row["task"]).decode(),
        trigger_json=orjson.dumps(row["trigger"]).decode(),
        behaviour_json=orjson.dumps(row["behaviour"]).decode(),
        status=row["status"],
        next_run_time=_ts(row["next_run_time"]),
        create_time=_ts(row["create_time"]),
        last_update_time=_ts(row["last_update_time"]),
        task_ids=row["task_ids"],
    )


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise errors.LunaError(errors.NOT_JSON, "Failed to parse json") from None


class SchedulesMixin:
    """Schedule methods of TasksServicer (kept apart for reading)."""

    engine: engine.Engine

    async def CreateSchedule(
        self, request: tasks_pb2.CreateScheduleRequest, context: Ctx
    ) -> tasks_pb2.CreateScheduleResponse:
        sid = await self.engine.schedules.create(request.account_id, _json(request.schedule_json))
        self.engine.wake.set()
        return tasks_pb2.CreateScheduleResponse(schedule_id=sid)

    async def GetSchedule(
        self, request: tasks_pb2.GetScheduleRequest, context: Ctx
    ) -> tasks_pb2.GetScheduleResponse:
        row = await self.engine.schedules.get(request.schedule_id, request.account_id)
        return tasks_pb2.GetScheduleResponse(schedule=schedule_pb(row))

    async def ListSchedules(
        self, request: tasks_pb2.ListSchedulesRequest, context: Ctx
    ) -> tasks_pb2.ListSchedulesResponse:
        page, size = _page(request.page, request.page_size)
        rows = await self.engine.schedules.list(
            request.account_id,
            request.task_type if request.HasField("task_type") else None,
            times.from_optional(request, "create_time_gte"),
            times.from_optional(request, "create_time_lt"),
            page,
            size,
        )
        return tasks_pb2.ListSchedulesResponse(schedules=[schedule_pb(r) for r in rows])

    async def ReplaceSchedule(
        self, request: tasks_pb2.ReplaceScheduleRequest, context: Ctx
    ) -> tasks_pb2.ReplaceScheduleResponse:
        await self.engine.schedules.replace(
            request.schedule_id, request.account_id, _json(request.schedule_json)
        )
        self.engine.wake.set()
        return tasks_pb2.ReplaceScheduleResponse()

    async def SetScheduleStatus(
        self, request: tasks_pb2.SetScheduleStatusRequest, context: Ctx
    ) -> tasks_pb2.SetScheduleStatusResponse:
        await self.engine.schedules.set_status(
            request.schedule_id, request.account_id, request.action
        )
        return tasks_pb2.SetScheduleStatusResponse()

    async def DeleteSchedule(
        self, request: tasks_pb2.DeleteScheduleRequest, context: Ctx
    ) -> tasks_pb2.DeleteScheduleResponse:
        await self.engine.schedules.delete(request.schedule_id, request.account_id)
        return tasks_pb2.DeleteScheduleResponse()


class TasksServicer(SchedulesMixin, tasks_pb2_grpc.TasksServiceServicer):
    def __init__(self, store: TaskStore, deps: Deps, eng: engine.Engine) -> None:
        self.store = store
        self.deps = deps
        self.engine = eng

    async def GetInfo(self, request: Any, context: Ctx) -> tasks_pb2.GetInfoResponse:
        return tasks_pb2.GetInfoResponse(info=info_pb2.ServiceInfo(name="tasks", version=VERSION))

    async def CreateTask(
        self, request: tasks_pb2.CreateTaskRequest, context: Ctx
    ) -> tasks_pb2.CreateTaskResponse:
        try:
            content = orjson.loads(request.content_json)
        except orjson.JSONDecodeError:
            raise errors.LunaError(errors.NOT_JSON, "Failed to parse task content") from None
        task_id = await engine.create_task(
            self.store,
            self.deps,
            request.account_id,
            request.task_type,
            request.description,
            content,
            request.schedule_id,
        )
        self.engine.wake.set()
        return tasks_pb2.CreateTaskResponse(task_id=task_id)

    async def GetTask(
        self, request: tasks_pb2.GetTaskRequest, context: Ctx
    ) -> tasks_pb2.GetTaskResponse:
        row = await self.store.get(request.task_id, request.account_id)
        return tasks_pb2.GetTaskResponse(task=task_pb(row))

    async def ListTasks(
        self, request: tasks_pb2.ListTasksRequest, context: Ctx
    ) -> tasks_pb2.ListTasksResponse:
        page, size = _page(request.page, request.page_size)
        rows = await self.store.list(task_filter(request.filter), page, size)
        return tasks_pb2.ListTasksResponse(tasks=[task_pb(r) for r in rows])

    async def CountTasks(
        self, request: tasks_pb2.CountTasksRequest, context: Ctx
    ) -> tasks_pb2.CountTasksResponse:
        return tasks_pb2.CountTasksResponse(
            count=await self.store.count(task_filter(request.filter))
        )

    async def CancelTask(
        self, request: tasks_pb2.CancelTaskRequest, context: Ctx
    ) -> tasks_pb2.CancelTaskResponse:
        await self.store.cancel(request.task_id, request.account_id)
        return tasks_pb2.CancelTaskResponse()

    async def DeleteTask(
        self, request: tasks_pb2.DeleteTaskRequest, context: Ctx
    ) -> tasks_pb2.DeleteTaskResponse:
        await self.store.delete(request.task_id, request.account_id)
        return tasks_pb2.DeleteTaskResponse()

    async def GetTaskResult(
        self, request: tasks_pb2.GetTaskResultRequest, context: Ctx
    ) -> tasks_pb2.GetTaskResultResponse:
        content_type, body = await self.store.result(request.task_id, request.account_id)
        return tasks_pb2.GetTaskResultResponse(
            content_type=content_type,
            body=body,
            filename=f"task_{request.task_id}.zip" if content_type == "application/zip" else "",
        )

    async def ListSubtasks(
        self, request: tasks_pb2.ListSubtasksRequest, context: Ctx
    ) -> tasks_pb2.ListSubtasksResponse:
        rows = await self.store.subtasks(request.task_id, request.account_id)
        return tasks_pb2.ListSubtasksResponse(
            subtasks=[
                tasks_pb2.Subtask(
                    subtask_id=r["subtask_id"],
                    task_id=r["task_id"],
                    result_id=str(r["result_id"] or ""),
                    create_time=_ts(r["create_time"]),
                    end_time=_ts(r["end_time"]),
                    subtask_status=r["subtask_status"],
                    content_json=orjson.dumps(r["content"]).decode(),
                )
                for r in rows
            ]
        )

    async def ListErrors(
        self, request: tasks_pb2.ListErrorsRequest, context: Ctx
    ) -> tasks_pb2.ListErrorsResponse:
        page, size = _page(request.page, request.page_size)
        rows = await self.store.list_errors(error_filter(request.filter), page, size)
        return tasks_pb2.ListErrorsResponse(errors=[error_pb(r) for r in rows])

    async def CountErrors(
        self, request: tasks_pb2.CountErrorsRequest, context: Ctx
    ) -> tasks_pb2.CountErrorsResponse:
        return tasks_pb2.CountErrorsResponse(
            count=await self.store.count_errors(error_filter(request.filter))
        )

    async def GetError(
        self, request: tasks_pb2.GetErrorRequest, context: Ctx
    ) -> tasks_pb2.GetErrorResponse:
        return tasks_pb2.GetErrorResponse(
            error=error_pb(await self.store.get_error(request.error_id, request.account_id))
        )

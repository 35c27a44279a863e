"""Task routes of both APIs: the platform's `/6/tasks/*` (routes/tasks.py) and the Luna Tasks
API `/2/tasks/*` (tasks_api.py); `build(api)` makes either table.

The two differ only in who the caller is: `/6` takes the account from the credentials,
`/2` (no auth, as LUNA's Tasks service) from the `account_id` body field or query filter.
Everything else (content validation, statuses, errors) is the tasks service's, so one task
looks the same through both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from luna.tasks.v1 import tasks_pb2

from services.common import errors, ids, luna_json, task_types, times
from services.gateway import jsonbody, query
from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable, json_response


@dataclass(frozen=True)
class Api:
    prefix: str  # "/6" or "/2"
    max_page_size: int
    platform: bool  # account from credentials (True) or from body/query (False)


PLATFORM = Api("/6", 1000, True)
TASKS_API = Api("/2", 100, False)


# Bounds of the protobuf fields values travel in: a value past them is a 400, not a
# ValueError (500) while the request message is built.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _int(q: Any, name: str, lo: int | None = None, hi: int | None = None) -> int | None:
    """An int32 query value (pass `hi=INT64_MAX` for an int64 one)."""
    lo = -INT32_MAX - 1 if lo is None else lo
    hi = INT32_MAX if hi is None else hi
    return query.number(q, name, lo, hi, parse=int)


def _time(q: Any, name: str) -> datetime | None:
    raw = q.get(name)
    if raw is None:
        return None
    try:
        return times.parse_rfc3339(raw)
    except ValueError:
        raise errors.bad_query(name) from None


def _ids(q: Any, name: str) -> list[int]:
    raw = q.get(name)
    if raw is None:
        return []
    try:
        values = [int(v) for v in raw.split(",")]
    except ValueError:
        raise errors.bad_query(name) from None
    if not values or any(v < 1 or v > INT64_MAX for v in values):
        raise errors.bad_query(name)
    return values


def _uuid(q: Any, name: str) -> str:
    raw = q.get(name, "")
    if raw and not ids.is_uuid(raw):
        raise errors.bad_query(name)
    return raw


def _set_time(msg: Any, field: str, value: datetime | None) -> None:
    if value is not None:
        ts = times.to_timestamp(value)
        assert ts is not None
        getattr(msg, field).CopyFrom(ts)


def account_filter(ctx: Ctx, api: Api) -> str:
    """Whose tasks the caller may touch: its own on /6 (all, or the `account_id` filter, for
    an account that sees all), the `account_id` query filter (or any) on /2."""
    requested = _uuid(ctx.request.query, "account_id")
    if not api.platform:
        return requested
    assert ctx.principal is not None
    if ctx.principal.sees_all:
        return requested
    return ctx.principal.account_id


def _path_id(ctx: Ctx, name: str) -> int:
    raw = ctx.request.match_info[name]
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_query(name) from None
    if value < 1 or value > INT64_MAX:
        raise errors.bad_query(name)
    return value


def _rfc(msg: Any, field: str) -> str | None:
    return (
        times.to_rfc3339(times.from_timestamp(getattr(msg, field))) if msg.HasField(field) else None
    )


def task_json(t: tasks_pb2.Task, api: Api) -> dict[str, Any]:
    out = {
        "task_id": t.task_id,
        "account_id": t.account_id,
        "create_time": _rfc(t, "create_time"),
        "end_time": _rfc(t, "end_time"),
        "last_update_time": _rfc(t, "last_update_time"),
        "task_type": t.task_type,
        "task_status": t.task_status,
        "result_id": t.result_id or None,
        "count_task_parts_done": t.count_task_parts_done,
        "count_task_parts_all": t.count_task_parts_all,
        "description": t.description,
        "content": orjson.loads(t.content_json),
    }
    if api.platform:
        out["schedule_id"] = t.schedule_id or None
    return out


def error_json(e: tasks_pb2.TaskError) -> dict[str, Any]:
    return luna_json.task_error(
        error_id=e.error_id,
        task_id=e.task_id,
        subtask_id=e.subtask_id or None,
        error_code=e.error_code,
        description=e.description,
        detail=e.detail,
        additional_info=e.additional_info or None,
        error_time=times.from_optional(e, "error_time"),
    )


def _page(ctx: Ctx, api: Api) -> tuple[int, int]:
    q = ctx.request.query
    page = _int(q, "page", 1)
    size = _int(q, "page_size", 1, api.max_page_size)
    return page or 1, size or 10


def task_filter(ctx: Ctx, api: Api) -> tasks_pb2.TaskFilter:
    q = ctx.request.query
    flt = tasks_pb2.TaskFilter(
        account_id=account_filter(ctx, api),
        task_ids=_ids(q, "task_ids"),
        result_id=_uuid(q, "result_id"),
    )
    task_type = _int(q, "task_type", 0, 9)
    if task_type is not None:
        flt.task_type = task_type
    status = _int(q, "task_status", 0, 5)
    if status is not None:
        flt.task_status = status
    schedule = _int(q, "schedule_id", 1, INT64_MAX)
    if schedule is not None:
        flt.schedule_id = schedule
    for name in ("create_time__gte", "create_time__lt", "end_time__gte", "end_time__lt"):
        _set_time(flt, name.replace("__", "_"), _time(q, name))
    return flt


def error_filter(ctx: Ctx, api: Api, task_id: int | None = None) -> tasks_pb2.ErrorFilter:
    q = ctx.request.query
    flt = tasks_pb2.ErrorFilter(account_id=account_filter(ctx, api))
    if task_id is not None:
        flt.task_ids.append(task_id)
    else:
        flt.task_ids.extend(_ids(q, "task_ids"))
        flt.error_ids.extend(_ids(q, "error_ids"))
    for name, lo, hi in (
        ("error_code", None, None),
        ("task_type", 0, 9),
        ("status_code", 400, 599),
    ):
        value = _int(q, name, lo, hi)
        if value is not None:
            setattr(flt, name, value)
    _set_time(flt, "error_time_gte", _time(q, "error_time__gte"))
    _set_time(flt, "error_time_lt", _time(q, "error_time__lt"))
    return flt


def _body(raw: bytes, api: Api) -> dict[str, Any]:
    if not raw:
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    body = jsonbody.loads(raw)  # 12002, or 12022 beyond the depth and NUL bounds
    allowed = {"description", "content"} | ({"account_id"} if not api.platform else set())
    required = ["content"] + (["account_id"] if not api.platform else [])

    if not isinstance(body, dict):
        raise errors.bad_json("", f"{body!r} is not of type 'object'")
    for key in body:
        if key not in allowed:
            raise errors.bad_json(
                "", f"Additional properties are not allowed ('{key}' was unexpected)"
            )
    for key in required:
        if key not in body:
            raise errors.bad_json("", f"'{key}' is a required property")
    if not isinstance(body["content"], dict):
        raise errors.bad_json("content", "content is not of type 'object'")
    if not isinstance(body.get("description", ""), str):
        raise errors.bad_json("description", "description is not of type 'string'")
    if "account_id" in body and (
        not isinstance(body["account_id"], str) or not ids.is_uuid(body["account_id"])
    ):
        raise errors.bad_json("account_id", f"{body['account_id']!r} is not a 'uuid'")
    return body


def build(api: Api) -> RouteTable:
    table = RouteTable()
    p = f"{api.prefix}/tasks"
    for name, task_type in task_types.TASK_TYPES.items():
        table.route("POST", f"{p}/{name}", auth=_auth(api, "creation"))(_creator(api, task_type))
    if api.platform:  # before /{task_id}, which would swallow "schedules"
        add_schedule_routes(table, p)
    _add_listings(table, api, p)
    _add_task_routes(table, api, p)
    return table


def _auth(api: Api, action: str) -> AuthRule | None:
    return AuthRule(resource="task", action=action) if api.platform else None


def _creator(api: Api, task_type: int) -> Any:
    async def create(ctx: Ctx) -> web.Response:
        body = _body(await ctx.request.read(), api)
        account_id = ctx.account_id if api.platform else body["account_id"]
        reply = await ctx.clients.tasks.CreateTask(
            tasks_pb2.CreateTaskRequest(
                account_id=account_id,
                task_type=task_type,
                description=body.get("description", ""),
                content_json=orjson.dumps(body["content"]).decode(),
            )
        )
        return json_response({"task_id": reply.task_id}, status=202)

    return create


async def _by_id(ctx: Ctx, api: Api, id_name: str, method: str, **fields: Any) -> Any:
    """`method` of the tasks service for the task (or schedule) the path's `id_name` names, as
    the caller may see it (28001 or 28040 when it is not there or not the caller's)."""
    request = getattr(tasks_pb2, f"{method}Request")(
        **{id_name: _path_id(ctx, id_name)}, account_id=account_filter(ctx, api), **fields
    )
    return await getattr(ctx.clients.tasks, method)(request)


async def _by_task_id(ctx: Ctx, api: Api, method: str) -> Any:
    return await _by_id(ctx, api, "task_id", method)


async def _list_errors(ctx: Ctx, api: Api, task_id: int | None = None) -> web.Response:
    page, size = _page(ctx, api)
    reply = await ctx.clients.tasks.ListErrors(
        tasks_pb2.ListErrorsRequest(
            filter=error_filter(ctx, api, task_id), page=page, page_size=size
        )
    )
    return json_response({"errors": [error_json(e) for e in reply.errors]})


async def _count_errors(ctx: Ctx, api: Api, task_id: int | None = None) -> web.Response:
    reply = await ctx.clients.tasks.CountErrors(
        tasks_pb2.CountErrorsRequest(filter=error_filter(ctx, api, task_id))
    )
    return json_response({"count": reply.count})


def _add_listings(table: RouteTable, api: Api, p: str) -> None:
    """Tasks and task errors: pages, counts, one error by id."""

    @table.route("GET", p, auth=_auth(api, "view"))
    async def get_tasks(ctx: Ctx) -> web.Response:
        page, size = _page(ctx, api)
        reply = await ctx.clients.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(filter=task_filter(ctx, api), page=page, page_size=size)
        )
        return json_response({"tasks": [task_json(t, api) for t in reply.tasks]})

    @table.route("GET", f"{p}/count", auth=_auth(api, "view"))
    async def count_tasks(ctx: Ctx) -> web.Response:
        reply = await ctx.clients.tasks.CountTasks(
            tasks_pb2.CountTasksRequest(filter=task_filter(ctx, api))
        )
        return json_response({"count": reply.count})

    @table.route("GET", f"{p}/errors", auth=_auth(api, "view"))
    async def get_errors(ctx: Ctx) -> web.Response:
        return await _list_errors(ctx, api)

    @table.route("GET", f"{p}/errors/count", auth=_auth(api, "view"))
    async def count_errors(ctx: Ctx) -> web.Response:
        return await _count_errors(ctx, api)

    @table.route("GET", f"{p}/errors/{{error_id}}", auth=_auth(api, "view"))
    async def get_error(ctx: Ctx) -> web.Response:
        reply = await ctx.clients.tasks.GetError(
            tasks_pb2.GetErrorRequest(
                error_id=_path_id(ctx, "error_id"), account_id=account_filter(ctx, api)
            )
        )
        return json_response(error_json(reply.error))


def _add_task_routes(table: RouteTable, api: Api, p: str) -> None:
    """One task by id: read, cancel, delete, its result, subtasks and errors."""

    @table.route("GET", f"{p}/{{task_id}}", auth=_auth(api, "view"))
    async def get_task(ctx: Ctx) -> web.Response:
        reply = await _by_task_id(ctx, api, "GetTask")
        return json_response(task_json(reply.task, api))

    @table.route("PATCH", f"{p}/{{task_id}}", auth=_auth(api, "modification"))
    async def cancel_task(ctx: Ctx) -> web.Response:
        await _by_task_id(ctx, api, "CancelTask")
        return web.Response(status=202)

    @table.route("DELETE", f"{p}/{{task_id}}", auth=_auth(api, "deletion"))
    async def delete_task(ctx: Ctx) -> web.Response:
        await _by_task_id(ctx, api, "DeleteTask")
        return web.Response(status=204)

    @table.route("GET", f"{p}/{{task_id}}/result", auth=_auth(api, "view"))
    async def get_result(ctx: Ctx) -> web.Response:
        reply = await _by_task_id(ctx, api, "GetTaskResult")
        headers = {}
        if reply.filename:
            headers["Content-Disposition"] = f"attachment; filename={reply.filename}"
        return web.Response(body=reply.body, content_type=reply.content_type, headers=headers)

    @table.route("GET", f"{p}/{{task_id}}/subtasks", auth=_auth(api, "view"))
    async def get_subtasks(ctx: Ctx) -> web.Response:
        reply = await _by_task_id(ctx, api, "ListSubtasks")
        return json_response(
            {
                "subtasks": [
                    {
                        "subtask_id": s.subtask_id,
                        "task_id": s.task_id,
                        "result_id": s.result_id or None,
                        "create_time": _rfc(s, "create_time"),
                        "end_time": _rfc(s, "end_time"),
                        "subtask_status": s.subtask_status,
                        "content": orjson.loads(s.content_json),
                    }
                    for s in reply.subtasks
                ]
            }
        )

    @table.route("GET", f"{p}/{{task_id}}/errors", auth=_auth(api, "view"))
    async def get_task_errors(ctx: Ctx) -> web.Response:
        await _by_task_id(ctx, api, "GetTask")  # 28001 for a task that is not the caller's
        return await _list_errors(ctx, api, _path_id(ctx, "task_id"))

    @table.route("GET", f"{p}/{{task_id}}/errors/count", auth=_auth(api, "view"))
    async def count_task_errors(ctx: Ctx) -> web.Response:
        await _by_task_id(ctx, api, "GetTask")
        return await _count_errors(ctx, api, _path_id(ctx, "task_id"))


def schedule_json(sc: tasks_pb2.Schedule) -> dict[str, Any]:
    return {
        "schedule_id": sc.schedule_id,
        "account_id": sc.account_id,
        "task": orjson.loads(sc.task_json),
        "trigger": orjson.loads(sc.trigger_json),
        "behaviour": orjson.loads(sc.behaviour_json),
        "status": sc.status,
        "next_run_time": _rfc(sc, "next_run_time"),
        "create_time": _rfc(sc, "create_time"),
        "last_update_time": _rfc(sc, "last_update_time"),
        "task_ids": list(sc.task_ids),
    }


def _schedule_body(raw: bytes) -> str:
    if not raw:
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    jsonbody.loads(raw)  # 12002, or 12022 beyond the depth and NUL bounds
    return raw.decode()


def add_schedule_routes(table: RouteTable, p: str) -> None:
    """/6/tasks/schedules: cron-triggered task templates (platform API only)."""
    s = f"{p}/schedules"

    def auth(action: str) -> AuthRule:
        return AuthRule(resource="task", action=action)

    @table.route("POST", s, auth=auth("creation"))
    async def create_schedule(ctx: Ctx) -> web.Response:
        reply = await ctx.clients.tasks.CreateSchedule(
            tasks_pb2.CreateScheduleRequest(
                account_id=ctx.account_id, schedule_json=_schedule_body(await ctx.request.read())
            )
        )
        return json_response({"schedule_id": reply.schedule_id}, status=201)

    @table.route("GET", s, auth=auth("view"))
    async def get_schedules(ctx: Ctx) -> web.Response:
        q = ctx.request.query
        page, size = _page(ctx, PLATFORM)
        req = tasks_pb2.ListSchedulesRequest(
            account_id=account_filter(ctx, PLATFORM), page=page, page_size=size
        )
        task_type = _int(q, "task_type", 1, 9)
        if task_type is not None:
            req.task_type = task_type
        _set_time(req, "create_time_gte", _time(q, "create_time__gte"))
        _set_time(req, "create_time_lt", _time(q, "create_time__lt"))
        reply = await ctx.clients.tasks.ListSchedules(req)
        # The platform reference shows a bare array here, unlike every other list.
        return json_response([schedule_json(sc) for sc in reply.schedules])

    @table.route("GET", f"{s}/{{schedule_id}}", auth=auth("view"))
    async def get_schedule(ctx: Ctx) -> web.Response:
        reply = await _by_id(ctx, PLATFORM, "schedule_id", "GetSchedule")
        return json_response(schedule_json(reply.schedule))

    @table.route("PUT", f"{s}/{{schedule_id}}", auth=auth("modification"))
    async def replace_schedule(ctx: Ctx) -> web.Response:
        # The body first: a document over the JSON limits is refused whatever the path says.
        body = _schedule_body(await ctx.request.read())
        await _by_id(ctx, PLATFORM, "schedule_id", "ReplaceSchedule", schedule_json=body)
        return json_response({"schedule_id": _path_id(ctx, "schedule_id")})

    @table.route("PATCH", f"{s}/{{schedule_id}}", auth=auth("modification"))
    async def patch_schedule(ctx: Ctx) -> web.Response:
        action = ctx.request.query.get("action")
        if action is None:
            raise errors.LunaError(
                errors.REQUIRED_QUERY_PARAM, "Required parameters 'action' not found"
            )
        await _by_id(ctx, PLATFORM, "schedule_id", "SetScheduleStatus", action=action)
        return web.Response(status=204)

    @table.route("DELETE", f"{s}/{{schedule_id}}", auth=auth("deletion"))
    async def delete_schedule(ctx: Ctx) -> web.Response:
        await _by_id(ctx, PLATFORM, "schedule_id", "DeleteSchedule")
        return web.Response(status=204)

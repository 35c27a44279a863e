"""/6/events (every documented filter, `target`, order, paging), /6/events/{event_id} and
/6/events/stats. Events are saved through /6/handlers/{handler_id}/events/raw (handlers.py)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from google.protobuf import json_format, struct_pb2
from luna.events.v1 import events_pb2

from services.common import errors, times
from services.common.pbjson import from_struct, plain
from services.gateway.crud import Collection
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
EVENTS = Collection(table, events_pb2, "event")
# `meta.<dotted.path>__<operator>:<type>` query keys (LUNA user meta filters).
META_KEY = re.compile(
    r"^meta\.(?P<path>[A-Za-z0-9_.]+?)(?:__(?P<op>eq|neq|like|nlike|in|nin|gt|gte|lt|lte))?"
    r"(?::(?P<type>string|integer|numeric))?$"
)
# The query's filters are EventFilter's fields, named as LUNA does (`age__gte` for age_gte),
# grouped by how a query value becomes a field value.
_FIELDS = events_pb2.EventFilter.DESCRIPTOR.fields
_STRING_NULLABLE = tuple(
    f.name for f in _FIELDS if f.message_type is events_pb2.NullableStrings.DESCRIPTOR
)
# gender is a single value, not a list (below).
_INT_NULLABLE = tuple(
    f.name
    for f in _FIELDS
    if f.message_type is events_pb2.NullableInts.DESCRIPTOR and f.name != "gender"
)
_LISTS = tuple(f.name for f in _FIELDS if f.is_repeated and f.type == f.TYPE_STRING)
# The geo origin is read as a pair (below).
_GEO_ORIGIN = ("origin_longitude", "origin_latitude")


def _query_name(field: str) -> str:
    return re.sub(r"_(gte|lt)$", r"__\1", field)


# query name -> EventFilter optional field
_SCALARS = {
    _query_name(f.name): f.name
    for f in _FIELDS
    if f.has_presence and f.message_type is None and f.name not in _GEO_ORIGIN
}
_TIMES = {
    _query_name(f.name): f.name
    for f in _FIELDS
    if f.message_type is not None and f.message_type.full_name == "google.protobuf.Timestamp"
}


def _split_null(values: list[str]) -> tuple[list[str], bool]:
    return [v for v in values if v != "null"], "null" in values


def meta_filters(query: Any) -> list[events_pb2.MetaFilter]:
    out = []
    for key in query:
        if not key.startswith("meta."):
            continue
        m = META_KEY.match(key)
        if m is None:
            raise errors.bad_query(key)
        op = m.group("op") or "eq"
        raw = query[key]
        values = raw.split(",") if op in ("in", "nin") else [raw]
        values, with_null = _split_null(values)
        out.append(
            events_pb2.MetaFilter(
                path=m.group("path"),
                operator=op,
                type=m.group("type") or "string",
                values=values,
                with_null=with_null,
            )
        )
    return out


def event_filter(ctx: Ctx) -> events_pb2.EventFilter:
    q = ctx.query
    flt = events_pb2.EventFilter(
        event_id_gte=q.get("event_id__gte", ""), event_id_lt=q.get("event_id__lt", "")
    )
    for name in _LISTS:
        getattr(flt, name).extend(q.get(name, []))
    for name in _STRING_NULLABLE:
        if name in q:
            values, with_null = _split_null(q[name])
            getattr(flt, name).CopyFrom(
                events_pb2.NullableStrings(values=values, with_null=with_null)
            )
    for name in _INT_NULLABLE:
        if name in q:
            values, with_null = _split_null(q[name])
            getattr(flt, name).CopyFrom(
                events_pb2.NullableInts(values=[int(v) for v in values], with_null=with_null)
            )
    if "gender" in q:
        values, with_null = _split_null([q["gender"]])
        flt.gender.CopyFrom(
            events_pb2.NullableInts(values=[int(v) for v in values], with_null=with_null)
        )
    for param, field in _SCALARS.items():
        if param in q:
            setattr(flt, field, q[param])
    times.copy_times(q, flt, _TIMES)
    lon, lat = q.get("origin_longitude"), q.get("origin_latitude")
    if lon == "null" or lat == "null":
        # LUNA: a null origin asks for events without geo position (only without deltas).
        if "longitude_delta" in q or "latitude_delta" in q:
            raise errors.bad_query("geo_position")
        flt.geo_null = True
    elif lon is not None or lat is not None:
        if lon is None or lat is None:
            missing = "origin_longitude" if lon is None else "origin_latitude"
            raise errors.LunaError(
                errors.REQUIRED_QUERY_PARAM, f"Required parameters '{missing}' not found"
            )
        flt.origin_longitude, flt.origin_latitude = float(lon), float(lat)
    flt.meta.extend(meta_filters(ctx.request.query))
    return flt


def event_json(ctx: Ctx, event: events_pb2.Event) -> Any:
    return from_struct(event.data)


EVENTS.listing(
    "getEvents",
    filter=event_filter,
    render=event_json,
    extra=lambda ctx: {
        "targets": ctx.query.get("target", []),
        "order": ctx.query.get("order", "desc"),
    },
)
EVENTS.get_and_check(
    ("getEvent", "checkEvent"),
    render=event_json,
    extra=lambda ctx: {"targets": ctx.query.get("target", [])},
)


def _value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    else:
        holder = struct_pb2.Struct()
        holder.update({"v": value})
        out.CopyFrom(holder.fields["v"])
    return out


@table.route(
    "POST", "/6/events/stats", auth=EVENTS.auth("view"), op="getEventStatistics", json_body=True
)
async def event_statistics(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body or {}
    request = events_pb2.GetEventStatisticsRequest(
        scope=ctx.scope(),
        targets=[
            events_pb2.StatTarget(column=t["column"], aggregator=t["aggregator"])
            for t in body.get("targets") or [{"column": "event_id", "aggregator": "count"}]
        ],
        filters=[
            events_pb2.StatFilter(
                column=f["column"], operator=f["operator"], value=_value(f["value"])
            )
            for f in body.get("filters", [])
        ],
        group_by=body.get("group_by", ""),
    )
    for period in body.get("period", []):
        if "start" in period:
            request.period_start.CopyFrom(times.to_timestamp(times.parse_rfc3339(period["start"])))
        if "end" in period:
            request.period_end.CopyFrom(times.to_timestamp(times.parse_rfc3339(period["end"])))
    reply = await ctx.clients.events.GetEventStatistics(request)
    return json_response(
        {
            "fields": list(reply.fields),
            "stats": [struct_json_list(row) for row in reply.stats],
        }
    )


def struct_json_list(row: struct_pb2.ListValue) -> list[Any]:
    return plain(json_format.MessageToDict(row))

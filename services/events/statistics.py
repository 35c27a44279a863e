"""Event statistics (LUNA `POST /6/events/stats`): SQL aggregations over the events table.

`targets` are {column, aggregator} pairs (count, min, max, avg, group_by) allowed per column as
LUNA documents; `filters` are {column, operator, value}; one create_time period; `group_by`
buckets create_time by an interval (`<N><m|h|d|w|M|y>`) or a calendar frequency. The answer is
a table: `fields` names the columns of each row in `stats` — group columns first (the time
bucket named by its group_by value, then grouped event columns by name), then one
`<aggregator>_<column>` per aggregation. Times are UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, times
from services.common.scoping import Scope, readable

C, MX, MN, AV, G = "count", "max", "min", "avg", "group_by"
_ID = {C, G}
_ALL = {C, MX, MN, AV, G}
_TIME = {C, MX, MN}
# column -> allowed aggregators (LUNA API v6, "get statistics on events").
TARGET_RULES: dict[str, set[str]] = {
    "event_id": _ID,
    "external_id": _ID,
    "handler_id": _ID,
    "stream_id": _ID,
    "source": _ID,
    "top_matching_candidates_label": _ID,
    "top_similar_object_id": _ID,
    "top_similar_external_id": _ID,
    "top_similar_object_similarity": {C, MX, MN, AV},
    "create_time": _TIME,
    "end_time": _TIME,
    "face_id": _ID,
    "gender": _ALL,
    "age": _ALL,
    "emotion": _ALL,
    "mask": _ALL,
    "ethnic_group": _ALL,
    "liveness": _ALL,
    "deepfake": _ALL,
    "user_data": _ID,
    "tags": _TIME,
    "city": _ID,
    "area": _ID,
    "district": _ID,
    "street": _ID,
    "house_number": _ID,
    "geo_position": {C},
    "track_id": _ID,
    "apparent_age": _ALL,
    "apparent_gender": _ALL,
    "sleeve_length": _ID,
    "headwear_state": _ALL,
    "headwear_apparent_color": _ID,
    "upper_clothing_colors": {C},
    "lower_garment_colors": {C},
    "lower_garment_type": _ID,
    "shoes_apparent_color": _ID,
    "backpack_state": _ALL,
}
META_RULES = {C, MX, MN, AV}

LIKE, IN, EQ, CMP, COVERED, NULL = "like", "in", "eq", "cmp", "covered", "null"
_OPS = {
    "like": LIKE,
    "nlike": LIKE,
    "in": IN,
    "nin": IN,
    "eq": EQ,
    "neq": EQ,
    "gt": CMP,
    "gte": CMP,
    "lt": CMP,
    "lte": CMP,
    "covered": COVERED,
}
_ATTR = {IN, EQ, CMP, NULL}
_LOC = {IN, EQ, NULL}
# column -> allowed operator groups (NULL = eq/neq with a null value).
FILTER_RULES: dict[str, set[str]] = {
    "tags": {LIKE},
    "source": _LOC,
    "stream_id": _LOC,
    "user_data": {IN, EQ},
    "account_id": {IN, EQ, CMP},
    "event_id": {IN, EQ, CMP},
    "external_id": {IN, EQ, CMP},
    "handler_id": {IN, EQ, CMP},
    "top_similar_object_id": {IN, EQ, CMP},
    "top_similar_external_id": {IN, EQ, CMP},
    "top_matching_candidates_label": {IN, EQ},
    "top_similar_object_similarity": {CMP},
    "face_id": {IN, EQ, CMP},
    "gender": _ATTR,
    "age": _ATTR,
    "emotion": _ATTR,
    "mask": _ATTR,
    "ethnic_group": _ATTR,
    "liveness": _ATTR,
    "deepfake": _ATTR,
    "city": _LOC,
    "area": _LOC,
    "district": _LOC,
    "street": _LOC,
    "house_number": _LOC,
    "geo_position": {COVERED, NULL},
    "track_id": _LOC,
    "apparent_age": _ATTR,
    "apparent_gender": _ATTR,
    "sleeve_length": _LOC,
    "headwear_state": _ATTR,
    "upper_clothing_colors": {IN, NULL},
    "backpack_state": _ATTR,
    "lower_garment_colors": {IN, NULL},
    "headwear_apparent_color": _LOC,
    "lower_garment_type": _LOC,
    "shoes_apparent_color": _LOC,
}
META_FILTER_RULES = {LIKE, IN, EQ, CMP, NULL}
_UUID_COLUMNS = {"account_id", "event_id", "handler_id", "face_id", "stream_id"}
_ARRAY_COLUMNS = {"upper_clothing_colors", "lower_garment_colors"}
FREQUENCIES = {
    "monthOfYear": "month",
    "weekOfYear": "week",
    "dayOfYear": "doy",
    "dayOfMonth": "day",
    "dayOfWeek": "isodow",
    "hourOfDay": "hour",
    "minuteOfHour": "minute",
}
INTERVAL = re.compile(r"^([1-9][0-9]{0,5})([mhdwMy])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
META_PATH = re.compile(r"^meta\.([A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*)$")
UTC_TIME = "(e.create_time AT TIME ZONE 'UTC')"


@dataclass(frozen=True)
class Target:
    column: str
    aggregator: str


@dataclass(frozen=True)
class Filter:
    column: str
    operator: str
    value: Any


def _bad(detail: str) -> errors.LunaError:
    return errors.LunaError(errors.BAD_INPUT, detail)


def _meta_path(column: str) -> list[str] | None:
    m = META_PATH.match(column)
    return m.group(1).split(".") if m else None


def _value_sql(column: str, aggregator: str, params: list[Any]) -> str:
    """The expression an aggregator reads for `column`."""
    path = _meta_path(column)
    if path is not None:
        params.extend([path, path])
        return (
            "(CASE WHEN jsonb_typeof(e.meta #> %s::text[]) = 'number' "
            "THEN (e.meta #>> %s::text[])::numeric END)"
        )
    if column == "geo_position":
        return "e.longitude"
    if column == "tags":
        return "NULLIF(cardinality(e.tags), 0)"
    if column in _ARRAY_COLUMNS:
        return f"NULLIF(cardinality(e.{column}), 0)"
    if column == "top_matching_candidates_label":
        return "e.top_matching_candidates_label"
    return f"e.{column}"


def _aggregate_sql(target: Target, params: list[Any]) -> str:
    if target.column == "event_id" and target.aggregator == C:
        return "count(*)"
    if _meta_path(target.column) is not None and target.aggregator == C:
        path = _meta_path(target.column)
        params.append(path)
        return "count(*) FILTER (WHERE e.meta #> %s::text[] IS NOT NULL)"
    expr = _value_sql(target.column, target.aggregator, params)
    func = {C: "count", MX: "max", MN: "min", AV: "avg"}[target.aggregator]
    return f"{func}({expr})"


def _time_bucket(group_by: str) -> str:
    if group_by in FREQUENCIES:
        return f"extract({FREQUENCIES[group_by]} FROM {UTC_TIME})::int"
    m = INTERVAL.match(group_by)
    if m is None:
        raise _bad(f"Bad group_by '{group_by}': expected <N><m|h|d|w|M|y> or a frequency")
    n, unit = int(m.group(1)), m.group(2)
    if unit in _UNITS:
        # Buckets aligned on a Monday midnight UTC, so weeks start on Mondays.
        return (
            f"date_bin(interval '{n} {_UNITS[unit]}', e.create_time, "
            "timestamptz '2000-01-03 00:00:00+00')"
        )
    months = n * 12 if unit == "y" else n
    index = (
        f"((extract(year FROM {UTC_TIME})::int * 12 + extract(month FROM {UTC_TIME})::int - 1)"
        f" / {months} * {months})"
    )
    # mod(), not `%`: the statement carries psycopg placeholders, where a bare % is one.
    return f"make_timestamptz({index} / 12, mod({index}, 12) + 1, 1, 0, 0, 0, 'UTC')"


def _filter_sql(flt: Filter, params: list[Any]) -> str:
    group = _OPS.get(flt.operator)
    path = _meta_path(flt.column)
    rules = META_FILTER_RULES if path is not None else FILTER_RULES.get(flt.column)
    if rules is None:
        raise _bad(f"Column '{flt.column}' cannot be filtered")
    if group is None:
        raise _bad(f"Unknown filter operator '{flt.operator}'")
    if flt.value is None and group == EQ:
        group = NULL
    if group not in rules:
        raise _bad(f"Operator '{flt.operator}' is not allowed for column '{flt.column}'")
    negate = flt.operator in ("nlike", "nin", "neq")
    if path is not None:
        node = "e.meta #> %s::text[]"
        if group == NULL:
            params.extend([path, path])
            sql = f"({node} IS NULL OR jsonb_typeof({node}) = 'null')"
            return f"NOT {sql}" if negate else sql
        numeric = isinstance(flt.value, (int, float)) or (
            isinstance(flt.value, list) and all(isinstance(v, (int, float)) for v in flt.value)
        )
        if numeric:
            params.extend([path, path])
            expr = (
                f"(CASE WHEN jsonb_typeof({node}) = 'number' "
                "THEN (e.meta #>> %s::text[])::numeric END)"
            )
        else:
            params.append(path)
            expr = "(e.meta #>> %s::text[])"
        return _compare(expr, flt, group, negate, params)
    column = flt.column
    if column == "geo_position":
        if group == NULL:
            return "e.longitude IS NOT NULL" if negate else "e.longitude IS NULL"
        box = flt.value
        if not isinstance(box, dict) or not {"origin_longitude", "origin_latitude"} <= set(box):
            raise _bad("'covered' needs origin_longitude and origin_latitude")
        lon, lat = float(box["origin_longitude"]), float(box["origin_latitude"])
        dlon = float(box.get("longitude_delta", 0.01))
        dlat = float(box.get("latitude_delta", 0.01))
        params.extend([lon - dlon, lon + dlon, lat - dlat, lat + dlat])
        return "e.longitude BETWEEN %s AND %s AND e.latitude BETWEEN %s AND %s"
    if column == "tags":
        if not isinstance(flt.value, str):
            raise _bad("'like' needs a string value")
        params.append(flt.value)
        sql = "EXISTS (SELECT 1 FROM unnest(e.tags) t WHERE t LIKE %s)"
        return f"NOT {sql}" if negate else sql
    if column in _ARRAY_COLUMNS:
        if group == NULL:
            sql = f"(e.{column} IS NULL OR cardinality(e.{column}) = 0)"
            return f"NOT {sql}" if negate else sql
        params.append(_as_list(flt.value))
        sql = f"COALESCE(e.{column} && %s::text[], FALSE)"
        return f"NOT {sql}" if negate else sql
    if group == NULL:
        return f"e.{column} IS NOT NULL" if negate else f"e.{column} IS NULL"
    expr = f"e.{column}::text" if column in _UUID_COLUMNS else f"e.{column}"
    return _compare(expr, flt, group, negate, params)


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _bad("'in'/'nin' need a non-empty list value")
    return value


def _compare(expr: str, flt: Filter, group: str, negate: bool, params: list[Any]) -> str:
    if group == IN:
        values = _as_list(flt.value)
        params.append([str(v) for v in values] if "::text" in expr else values)
        sql = f"{expr} = ANY(%s)"
        return f"NOT COALESCE({sql}, FALSE)" if negate else sql
    if group == LIKE:
        if not isinstance(flt.value, str):
            raise _bad("'like' needs a string value")
        params.append(flt.value)
        return f"{expr} {'NOT ' if negate else ''}LIKE %s"
    if isinstance(flt.value, (list, dict)) or flt.value is None:
        raise _bad(f"'{flt.operator}' needs a single value")
    op = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[flt.operator]
    params.append(flt.value)
    if op == "<>":
        return f"{expr} IS DISTINCT FROM %s"
    return f"{expr} {op} %s"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return times.to_rfc3339(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def build_query(
    scope: Scope,
    targets: list[Target],
    filters: list[Filter],
    *,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    group_by: str = "",
) -> tuple[str, list[Any], list[str]]:
    """(SQL, parameters, field names) of one statistics request."""
    targets = targets or [Target("event_id", C)]
    if not any(t.aggregator != G for t in targets):
        raise _bad("At least one aggregator other than 'group_by' is required")
    select_group: list[str] = []
    fields: list[str] = []
    group_params: list[Any] = []
    if group_by:
        select_group.append(_time_bucket(group_by))
        fields.append(group_by)
    aggregates: list[str] = []
    agg_params: list[Any] = []
    agg_fields: list[str] = []
    for t in targets:
        path = _meta_path(t.column)
        allowed = META_RULES if path is not None else TARGET_RULES.get(t.column)
        if allowed is None:
            raise _bad(f"Unknown statistics column '{t.column}'")
        if t.aggregator not in allowed:
            raise _bad(f"Aggregator '{t.aggregator}' is not allowed for column '{t.column}'")
        if t.aggregator == G:
            select_group.append(_value_sql(t.column, G, group_params))
            fields.append(t.column)
        else:
            aggregates.append(_aggregate_sql(t, agg_params))
            agg_fields.append(f"{t.aggregator}_{t.column}")
    where, scope_params = readable(scope, "e.account_id")
    conditions, where_params = [where], list(scope_params)
    if period_start is not None:
        conditions.append("e.create_time >= %s")
        where_params.append(period_start)
    if period_end is not None:
        conditions.append("e.create_time < %s")
        where_params.append(period_end)
    for f in filters:
        conditions.append(_filter_sql(f, where_params))
    # Aliased, because dict rows would merge two aggregates both named "count".
    select = [f"{expr} AS f{i}" for i, expr in enumerate([*select_group, *aggregates])]
    sql = f"SELECT {', '.join(select)} FROM events e WHERE {' AND '.join(conditions)}"
    params = [*group_params, *agg_params, *where_params]
    if select_group:
        positions = ", ".join(str(i + 1) for i in range(len(select_group)))
        sql += f" GROUP BY {positions} ORDER BY {positions}"
    return sql, params, [*fields, *agg_fields]


class Statistics:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def compute(
        self, scope: Scope, targets: list[Target], filters: list[Filter], **options: Any
    ) -> tuple[list[str], list[list[Any]]]:
        """(field names, rows); `options` are build_query's period_start, period_end and
        group_by."""
        sql, params, fields = build_query(scope, targets, filters, **options)
        rows = await db.fetch_all(self._pool, sql, params)
        return fields, [[_plain(v) for v in row.values()] for row in rows]

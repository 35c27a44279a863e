"""The Sender: events published on the JetStream stream EVENTS, filtered per websocket
subscription and pushed as LUNA Sender messages.

Each gateway process follows the stream with one ordered consumer from "now" and fans the
events out to its own subscribers; a slow subscriber loses its oldest queued messages rather
than slowing the others down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.common import errors, ids, subjects
from services.common.luna_json import dig
from services.gateway import request_ids

log = logging.getLogger("luna.gateway.sender")
QUEUE_LIMIT = 1000

Check = Callable[[dict[str, Any]], bool]


def _strings(
    name: str, raw: str, *, allowed: set[str] | None = None, max_len: int = 0
) -> list[str]:
    values = [v for v in raw.split(",") if v != ""]
    if not values:
        raise errors.bad_query(name)
    for v in values:
        if (allowed is not None and v not in allowed) or (max_len and len(v) > max_len):
            raise errors.bad_query(name)
    return values


def _ints(name: str, raw: str, allowed: range) -> set[int]:
    try:
        values = {int(v) for v in _strings(name, raw)}
    except ValueError:
        raise errors.bad_query(name) from None
    if not values <= set(allowed):
        raise errors.bad_query(name)
    return values


def _number(name: str, raw: str, lo: float | None = None, hi: float | None = None) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise errors.bad_query(name) from None
    if value != value or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise errors.bad_query(name)
    return value


def _in(path: tuple[str, ...], values: set[Any] | list[Any]) -> Check:
    wanted = set(values)
    return lambda e: dig(e, *path) in wanted


def _bound(path: tuple[str, ...], limit: float, *, lower: bool) -> Check:
    def check(event: dict[str, Any]) -> bool:
        value = dig(event, *path)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return value >= limit if lower else value < limit

    return check


_LOCATION = {
    "cities": "city",
    "areas": "area",
    "districts": "district",
    "streets": "street",
    "house_numbers": "house_number",
}
_CODES = {
    "gender": (("gender",), range(0, 2)),
    "ethnic_groups": (("ethnic_group",), range(1, 5)),
    "liveness": (("liveness",), range(0, 3)),
    "deepfake": (("deepfake",), range(0, 2)),
    "masks": (("mask",), range(1, 4)),
    "emotions": (("emotion",), range(1, 8)),
}
_BOUNDS = {
    "age__gte": (("age",), True, 0, 200),
    "age__lt": (("age",), False, 0, 200),
    "object_similarity__gte": (("top_match", "similarity"), True, 0, 1),
    "object_similarity__lt": (("top_match", "similarity"), False, 0, 1),
}
_EXPANDED_PALETTE = {
    "black",
    "blue",
    "green",
    "gray",
    "orange",
    "purple",
    "red",
    "white",
    "yellow",
    "pink",
    "brown",
    "beige",
    "khaki",
    "multicolored",
    "undefined",
}
_SHORT_PALETTE = {"black", "other", "white", "undefined"}
# Each passes when the event has at least one of the given values.
_COLOR_FILTERS: dict[str, tuple[tuple[str, ...], set[str]]] = {
    "upper_clothing_colors": (("upper_body", "upper_clothing", "colors"), _EXPANDED_PALETTE),
    "lower_garment_colors": (("lower_body", "lower_garment", "colors"), _EXPANDED_PALETTE),
    "lower_garment_types": (
        ("lower_body", "lower_garment", "type"),
        {"trousers", "shorts", "skirt", "undefined"},
    ),
    "shoes_colors": (("lower_body", "shoes", "apparent_color"), _SHORT_PALETTE),
    "headwear_colors": (("upper_body", "headwear", "apparent_color"), _SHORT_PALETTE),
}


def _as_set(value: Any) -> set[Any]:
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return {value} if isinstance(value, str) else set()


_BODY_STATES = {"absent": 0, "no": 0, "present": 1, "yes": 1, "undefined": 2, "unknown": 2}


@dataclass
class Filters:
    """The ws handshake's query filters; an event passes when every given filter holds."""

    checks: list[Check] = field(default_factory=list)

    def matches(self, event: dict[str, Any]) -> bool:
        return all(check(event) for check in self.checks)

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        checks: list[Check] = []
        for name, raw in query.items():
            if name == "sources":
                checks.append(_in(("source",), _strings(name, raw)))
            elif name in ("stream_ids", "handler_ids"):
                values = _strings(name, raw)
                if not all(ids.is_uuid(v) for v in values):
                    raise errors.bad_query(name)
                checks.append(_in((name[:-1],), values))
            elif name in _CODES:
                path, allowed = _CODES[name]
                checks.append(_in(path, _ints(name, raw, allowed)))
            elif name in _BOUNDS:
                path, lower, lo, hi = _BOUNDS[name]
                checks.append(_bound(path, _number(name, raw, lo, hi), lower=lower))
            elif name in _LOCATION:
                key = _LOCATION[name]
                checks.append(_in(("location", key), _strings(name, raw)))
            elif name == "tags":
                tags = set(_strings(name, raw, max_len=36))
                checks.append(lambda e, t=tags: t <= set(e.get("tags") or ()))
            elif name == "user_data":
                part = raw
                checks.append(lambda e, p=part: p in (e.get("user_data") or ""))
            elif name == "matching_candidates_labels":
                labels = set(_strings(name, raw))
                checks.append(
                    lambda e, ls=labels: bool(
                        ls & {m.get("label") for m in e.get("match_result") or () if m}
                    )
                )
            elif name == "geo_position":
                checks.append(_geo(raw))
            elif name in ("apparent_age__gte", "apparent_age__lt"):
                limit = _number(name, raw, 0, 100)
                path = ("body_basic_attributes", "apparent_age")
                checks.append(_bound(path, limit, lower=name.endswith("gte")))
            elif name == "apparent_gender":
                genders = _ints(name, raw, range(0, 3))
                names = {0: "female", 1: "male", 2: "undefined"}
                wanted = {names[g] for g in genders} | genders
                checks.append(_in(("body_basic_attributes", "apparent_gender"), wanted))
            elif name in ("headwear_states", "backpack_states"):
                states = _ints(name, raw, range(0, 3))
                path = (
                    ("upper_body", "headwear", "apparent_state")
                    if name == "headwear_states"
                    else ("accessories", "backpack", "state")
                )
                checks.append(
                    lambda e, p=path, s=states: _BODY_STATES.get(str(dig(e, *p)), -1) in s
                )
            elif name in _COLOR_FILTERS:
                path, palette = _COLOR_FILTERS[name]
                wanted = set(_strings(name, raw, allowed=palette))
                checks.append(lambda e, p=path, w=wanted: bool(w & _as_set(dig(e, *p))))
            elif name == "sleeve_lengths":
                lengths = _strings(name, raw, allowed={"short", "long", "undefined"})
                checks.append(_in(("upper_body", "sleeve", "length"), lengths))
            else:
                raise errors.bad_query(name, "not supported")
        return cls(checks)


def _geo(raw: str) -> Check:
    """`origin_longitude,<x>,origin_latitude,<y>[,longitude_delta,<dx>,latitude_delta,<dy>]`."""
    parts = raw.split(",")
    if len(parts) % 2:
        raise errors.bad_query("geo_position")
    pairs = dict(zip(parts[::2], parts[1::2], strict=True))
    try:
        lon, lat = float(pairs["origin_longitude"]), float(pairs["origin_latitude"])
        dlon = float(pairs.get("longitude_delta", 0.01))
        dlat = float(pairs.get("latitude_delta", 0.01))
    except (KeyError, ValueError):
        raise errors.bad_query("geo_position") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90 and 0 <= dlon <= 90 and 0 <= dlat <= 90):
        raise errors.bad_query("geo_position")

    def check(event: dict[str, Any]) -> bool:
        x = dig(event, "location", "geo_position", "longitude")
        y = dig(event, "location", "geo_position", "latitude")
        if not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
            return False
        return abs(x - lon) <= dlon and abs(y - lat) <= dlat

    return check


_OPERATORS = ("eq", "neq", "like", "nlike", "in", "nin", "gt", "gte", "lt", "lte")
_NONE_OK = {"eq", "neq", "in", "nin"}
_TYPES = ("string", "integer", "numeric")


def _like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE: `%` any run of characters, `_` exactly one; everything else literal."""
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _typed(name: str, raw: str, kind: str, op: str) -> Any:
    if raw == "none":
        if op not in _NONE_OK:
            raise errors.bad_query(name)
        return None
    if kind == "string":
        return raw
    try:
        value = int(raw) if kind == "integer" else float(raw)
    except ValueError:
        raise errors.bad_query(name) from None
    if value != value:  # NaN compares with nothing
        raise errors.bad_query(name)
    return value


def _comparable(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "integer" else isinstance(value, (int, float))


def _general_check(name: str, raw: str) -> Check:
    """`event.<dotted.path>[__<operator>][:<type>]=<value>` of the general events handshake."""
    spec, kind = name[len("event.") :], "string"
    if ":" in spec:
        spec, kind = spec.rsplit(":", 1)
    op = "eq"
    if "__" in spec:
        spec, op = spec.rsplit("__", 1)
    path = tuple(spec.split("."))
    if kind not in _TYPES or op not in _OPERATORS or not all(path):
        raise errors.bad_query(name)
    if op in ("like", "nlike") and kind != "string":
        raise errors.bad_query(name)
    if op in ("in", "nin"):
        values = {_typed(name, v, kind, op) for v in raw.split(",")}

        def member(e: dict[str, Any]) -> bool:
            value = dig(e, *path)
            hit = (value is None and None in values) or (
                _comparable(value, kind) and value in values
            )
            return hit if op == "in" else not hit

        return member
    wanted = _typed(name, raw, kind, op)
    if op in ("like", "nlike"):
        pattern = _like(raw)

        def like(e: dict[str, Any]) -> bool:
            value = dig(e, *path)
            hit = isinstance(value, str) and pattern.fullmatch(value) is not None
            return hit if op == "like" else not hit

        return like
    if op in ("eq", "neq"):

        def equal(e: dict[str, Any]) -> bool:
            value = dig(e, *path)
            if wanted is None:
                hit = value is None
            else:
                hit = _comparable(value, kind) and value == wanted
            return hit if op == "eq" else not hit

        return equal
    compare = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[op]

    def order(e: dict[str, Any]) -> bool:
        value = dig(e, *path)
        return _comparable(value, kind) and compare(value, wanted)

    return order


@dataclass
class GeneralFilters:
    """The general events handshake: `event_type` (required), `account_id`, `event.*` filters."""

    event_type: str
    account_id: str | None = None
    checks: list[Check] = field(default_factory=list)

    def matches(self, event_type: str, account_id: str | None, event: dict[str, Any]) -> bool:
        if event_type != self.event_type:
            return False
        if self.account_id is not None and account_id != self.account_id:
            return False
        return all(check(event) for check in self.checks)

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> GeneralFilters:
        event_type = query.get("event_type")
        if event_type is None:
            raise errors.LunaError(
                errors.REQUIRED_QUERY_PARAM, "Required parameters 'event_type' not found"
            )
        if not event_type:
            raise errors.bad_query("event_type")
        account_id = query.get("account_id")
        if account_id is not None and not ids.is_uuid(account_id):
            raise errors.bad_query("account_id")
        checks: list[Check] = []
        for name, raw in query.items():
            if name in ("event_type", "account_id"):
                continue
            if not name.startswith("event."):
                raise errors.bad_query(name, "not supported")
            checks.append(_general_check(name, raw))
        return cls(event_type, account_id, checks)


def message(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The Sender message: hyphenated time keys and `Luna-Request-id`, as LUNA spells them."""
    return {
        "event": event,
        "handler_id": event.get("handler_id"),
        "event-create-time": event.get("create_time"),
        "event-end-time": event.get("end_time"),
        "Luna-Request-id": request_id,
    }


def general_message(
    event: dict[str, Any], event_type: str, account_id: str | None, batch: dict[str, Any]
) -> dict[str, Any]:
    """The general events message: no handler id, no request id (Sender API v2)."""
    return {
        "event": event,
        "event_type": event_type,
        "account_id": account_id,
        "event-create-time": batch.get("event_create_time"),
        "event-end-time": batch.get("event_end_time"),
    }


class _Queued:
    queue: asyncio.Queue[bytes]

    def offer(self, payload: bytes) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()  # drop the oldest: a slow client must not stall others
        self.queue.put_nowait(payload)


@dataclass(eq=False)
class Subscription(_Queued):
    account_id: str
    filters: Filters
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


@dataclass(eq=False)
class GeneralSubscription(_Queued):
    filters: GeneralFilters
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


def user_subject(account_id: str) -> str:
    return f"{subjects.SENDER_PREFIX}.events.{account_id}"


GENERAL_SUBJECT = f"{subjects.SENDER_PREFIX}.general"


class Hub:
    """Fans EVENTS out to the websocket subscriptions of this gateway."""

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self.general: set[GeneralSubscription] = set()
        self.sub: Any = None  # the EVENTS follower, for its consumer lag

    def dispatch(self, subject: str, data: bytes, request_id: str) -> int:
        parts = subject.split(".")
        account_id = parts[2] if len(parts) > 3 else ""
        targets = [s for s in self.subscriptions if s.account_id == account_id]
        if not targets:
            return 0
        event = orjson.loads(data)
        payload: bytes | None = None
        sent = 0
        for sub in targets:
            if sub.filters.matches(event):
                payload = payload or orjson.dumps(message(event, request_id))
                sub.offer(payload)
                sent += 1
        return sent

    def dispatch_user(self, account_id: str, batch: dict[str, Any], request_id: str) -> int:
        """Events a user published through the Sender API: each is delivered as the `event`
        of a message carrying the batch's handler id and times."""
        targets = [s for s in self.subscriptions if s.account_id == account_id]
        sent = 0
        for event in batch.get("events") or ():
            if not isinstance(event, dict):
                continue
            payload: bytes | None = None
            for sub in targets:
                if sub.filters.matches(event):
                    payload = payload or orjson.dumps(
                        {
                            "event": event,
                            "handler_id": batch.get("handler_id"),
                            "event-create-time": batch.get("event_create_time"),
                            "event-end-time": batch.get("event_end_time"),
                            "Luna-Request-id": request_id,
                        }
                    )
                    sub.offer(payload)
                    sent += 1
        return sent

    def dispatch_general(self, batch: dict[str, Any]) -> int:
        event_type, account_id = batch.get("event_type", ""), batch.get("account_id")
        sent = 0
        for event in batch.get("events") or ():
            if not isinstance(event, dict):
                continue
            payload: bytes | None = None
            for sub in self.general:
                if sub.filters.matches(event_type, account_id, event):
                    payload = payload or orjson.dumps(
                        general_message(event, event_type, account_id, batch)
                    )
                    sub.offer(payload)
                    sent += 1
        return sent

    async def follow_published(self, nc: Any) -> None:
        """Events published through the Sender API (on any gateway) reach this one's
        subscribers too."""

        async def on_user(msg: Any) -> None:
            try:
                rid = (msg.headers or {}).get("Luna-Request-Id", "")
                account_id = msg.subject.rsplit(".", 1)[-1]
                self.dispatch_user(account_id, orjson.loads(msg.data), rid)
            except Exception:
                log.exception("cannot dispatch published events on %s", msg.subject)

        async def on_general(msg: Any) -> None:
            try:
                self.dispatch_general(orjson.loads(msg.data))
            except Exception:
                log.exception("cannot dispatch general events")

        await nc.subscribe(user_subject("*"), cb=on_user)
        await nc.subscribe(GENERAL_SUBJECT, cb=on_general)

    async def follow(self, js: JetStreamContext) -> Any:
        """Subscribe to every event published from now on."""

        async def on_message(msg: Any) -> None:
            try:
                rid = (msg.headers or {}).get("Luna-Request-Id", "")
                self.dispatch(msg.subject, msg.data, rid)
            except Exception:
                log.exception("cannot dispatch event on %s", msg.subject)

        self.sub = await js.subscribe(
            f"{subjects.EVENTS_PREFIX}.>",
            cb=on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )
        return self.sub


async def stream_to(
    request: web.Request,
    hub: Hub,
    sub: Subscription | GeneralSubscription,
    heartbeat: float,
) -> web.WebSocketResponse:
    """Upgrade to a websocket, push `sub`'s messages until the peer leaves. Autoping: an RFC
    6455 ping every `heartbeat` seconds; a peer that stops answering is dropped."""
    ws = web.WebSocketResponse(heartbeat=heartbeat)
    rid = request.headers.get(request_ids.HEADER)
    if rid:
        ws.headers[request_ids.HEADER] = rid
    await ws.prepare(request)
    pool: set[Any] = hub.general if isinstance(sub, GeneralSubscription) else hub.subscriptions
    pool.add(sub)

    async def pump() -> None:
        while True:
            payload = await sub.queue.get()
            await ws.send_str(payload.decode())

    sender = asyncio.ensure_future(pump())
    try:
        async for msg in ws:  # the Sender protocol has no client messages; wait for close
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        pool.discard(sub)
        sender.cancel()
    return ws

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.common import errors, ids, subjects

log = logging.getLogger("luna.gateway.sender")
QUEUE_LIMIT = 1000

Check = Callable[[dict[str, Any]], bool]


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _bad(name: str) -> errors.LunaError:
    return errors.LunaError(errors.BAD_QUERY_PARAM, f"Bad query parameters '{name}'")


def _strings(
    name: str, raw: str, *, allowed: set[str] | None = None, max_len: int = 0
) -> list[str]:
    values = [v for v in raw.split(",") if v != ""]
    if not values:
        raise _bad(name)
    for v in values:
        if (allowed is not None and v not in allowed) or (max_len and len(v) > max_len):
            raise _bad(name)
    return values


def _ints(name: str, raw: str, allowed: range) -> set[int]:
    try:
        values = {int(v) for v in _strings(name, raw)}
    except ValueError:
        raise _bad(name) from None
    if not values <= set(allowed):
        raise _bad(name)
    return values


def _number(name: str, raw: str, lo: float | None = None, hi: float | None = None) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _bad(name) from None
    if value != value or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _bad(name)
    return value


def _in(path: tuple[str, ...], values: set[Any] | list[Any]) -> Check:
    wanted = set(values)
    return lambda e: _get(e, *path) in wanted


def _bound(path: tuple[str, ...], limit: float, *, lower: bool) -> Check:
    def check(event: dict[str, Any]) -> bool:
        value = _get(event, *path)
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
                    raise _bad(name)
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
                    lambda e, p=path, s=states: _BODY_STATES.get(str(_get(e, *p)), -1) in s
                )
            elif name == "sleeve_lengths":
                lengths = _strings(name, raw, allowed={"short", "long", "undefined"})
                checks.append(_in(("upper_body", "sleeve", "length"), lengths))
            else:
                raise errors.LunaError(
                    errors.BAD_QUERY_PARAM, f"Bad query parameters '{name}': not supported"
                )
        return cls(checks)


def _geo(raw: str) -> Check:
    """`origin_longitude,<x>,origin_latitude,<y>[,longitude_delta,<dx>,latitude_delta,<dy>]`."""
    parts = raw.split(",")
    if len(parts) % 2:
        raise _bad("geo_position")
    pairs = dict(zip(parts[::2], parts[1::2], strict=True))
    try:
        lon, lat = float(pairs["origin_longitude"]), float(pairs["origin_latitude"])
        dlon = float(pairs.get("longitude_delta", 0.01))
        dlat = float(pairs.get("latitude_delta", 0.01))
    except (KeyError, ValueError):
        raise _bad("geo_position") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90 and 0 <= dlon <= 90 and 0 <= dlat <= 90):
        raise _bad("geo_position")

    def check(event: dict[str, Any]) -> bool:
        x = _get(event, "location", "geo_position", "longitude")
        y = _get(event, "location", "geo_position", "latitude")
        if not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
            return False
        return abs(x - lon) <= dlon and abs(y - lat) <= dlat

    return check


def message(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The Sender message: hyphenated time keys and `Luna-Request-id`, as LUNA spells them."""
    return {
        "event": event,
        "handler_id": event.get("handler_id"),
        "event-create-time": event.get("create_time"),
        "event-end-time": event.get("end_time"),
        "Luna-Request-id": request_id,
    }


@dataclass(eq=False)
class Subscription:
    account_id: str
    filters: Filters
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))

    def offer(self, payload: bytes) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()  # drop the oldest: a slow client must not stall others
        self.queue.put_nowait(payload)


class Hub:
    """Fans EVENTS out to the websocket subscriptions of this gateway."""

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()

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

    async def follow(self, js: JetStreamContext) -> Any:
        """Subscribe to every event published from now on."""

        async def on_message(msg: Any) -> None:
            try:
                rid = (msg.headers or {}).get("Luna-Request-Id", "")
                self.dispatch(msg.subject, msg.data, rid)
            except Exception:
                log.exception("cannot dispatch event on %s", msg.subject)

        return await js.subscribe(
            f"{subjects.EVENTS_PREFIX}.>",
            cb=on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )

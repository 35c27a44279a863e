"""Sender filters and message format, on events shaped as GET /6/events renders them."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from services.common import errors
from services.gateway.sender import Filters, Hub, Subscription, message

ACCOUNT = "0f4e9a1c-5d21-4c3a-9a7e-3b2f1d0c9e8a"
HANDLER = "8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"
EVENT = {
    "event_id": "11111111-2222-4333-8444-555555555555",
    "account_id": ACCOUNT,
    "handler_id": HANDLER,
    "create_time": "2026-11-23T10:00:00.000000Z",
    "end_time": "2026-11-23T10:00:01.000000Z",
    "source": "cam1",
    "stream_id": None,
    "top_match": {"label": "vip", "similarity": 0.93, "face": {"face_id": "x"}},
    "match_result": [{"label": "vip", "candidates": []}],
    "gender": 0,
    "age": 34,
    "emotion": 4,
    "mask": 1,
    "liveness": None,
    "tags": ["entrance", "day"],
    "user_data": "front door camera",
    "location": {"city": "Moscow", "geo_position": {"longitude": 36.61, "latitude": 55.75}},
}


@pytest.mark.parametrize(
    ("query", "passes"),
    [
        ({}, True),
        ({"sources": "cam2,cam1"}, True),
        ({"sources": "cam2"}, False),
        ({"handler_ids": HANDLER}, True),
        ({"gender": "1"}, False),
        ({"age__gte": "30", "age__lt": "35"}, True),
        ({"age__lt": "34"}, False),
        ({"object_similarity__gte": "0.9"}, True),
        ({"object_similarity__gte": "0.95"}, False),
        ({"emotions": "4,5"}, True),
        ({"masks": "2,3"}, False),
        ({"liveness": "1"}, False),  # an event without the estimation never passes
        ({"tags": "entrance"}, True),
        ({"tags": "entrance,night"}, False),  # every given tag must be there
        ({"user_data": "door"}, True),
        ({"matching_candidates_labels": "vip,staff"}, True),
        ({"cities": "Moscow"}, True),
        ({"geo_position": "origin_longitude,36.616,origin_latitude,55.752"}, True),
        ({"geo_position": "origin_longitude,10,origin_latitude,10"}, False),
    ],
)
def test_filters(query: dict[str, str], passes: bool) -> None:
    assert Filters.parse(query).matches(EVENT) is passes


@pytest.mark.parametrize(
    "query",
    [
        {"gender": "3"},
        {"age__gte": "old"},
        {"handler_ids": "not-a-uuid"},
        {"emotions": "0"},
        {"tags": "x" * 37},
        {"geo_position": "origin_longitude,500,origin_latitude,1"},
        {"no_such_filter": "1"},
        {"sources": ""},
    ],
)
def test_bad_filters_are_luna_errors(query: dict[str, str]) -> None:
    with pytest.raises(errors.LunaError) as exc:
        Filters.parse(query)
    assert exc.value.code == errors.BAD_QUERY_PARAM and exc.value.http_status == 400


def test_message_keys_are_spelled_as_luna_does() -> None:
    msg = message(EVENT, "1536751345,8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a")
    assert set(msg) == {
        "event",
        "handler_id",
        "event-create-time",
        "event-end-time",
        "Luna-Request-id",
    }
    assert msg["event-create-time"] == EVENT["create_time"] and msg["handler_id"] == HANDLER


async def test_hub_delivers_only_to_matching_subscriptions_of_the_account() -> None:
    hub = Hub()
    match = Subscription(ACCOUNT, Filters.parse({"sources": "cam1"}))
    other_filter = Subscription(ACCOUNT, Filters.parse({"sources": "cam9"}))
    other_account = Subscription("22222222-2222-4333-8444-555555555555", Filters())
    hub.subscriptions |= {match, other_filter, other_account}
    sent = hub.dispatch(f"luna.events.{ACCOUNT}.{HANDLER}", orjson.dumps(EVENT), "rid")
    assert sent == 1
    got = orjson.loads(await asyncio.wait_for(match.queue.get(), 1))
    assert got["event"]["event_id"] == EVENT["event_id"] and got["Luna-Request-id"] == "rid"
    assert other_filter.queue.empty() and other_account.queue.empty()


def test_slow_subscriber_keeps_the_newest() -> None:
    sub = Subscription(ACCOUNT, Filters())
    for i in range(1005):
        sub.offer(str(i).encode())
    assert sub.queue.qsize() == 1000
    assert sub.queue.get_nowait() == b"5"

"""General events filters, user-published and general dispatch, and the body-attribute colour
filters of the Sender handshake."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from services.common import errors
from services.gateway.sender import (
    Filters,
    GeneralFilters,
    GeneralSubscription,
    Hub,
    Subscription,
)

ACCOUNT = "0f4e9a1c-5d21-4c3a-9a7e-3b2f1d0c9e8a"
OTHER = "22222222-2222-4333-8444-555555555555"
HANDLER = "8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"
GENERAL = {
    "field_1": 37.2,
    "field_2": {"field_3": "value"},
    "field_4": 5,
    "name": "Main entrance",
    "missing": None,
}


@pytest.mark.parametrize(
    ("query", "passes"),
    [
        ({}, True),
        ({"event.field_1__gt:numeric": "36.6"}, True),
        ({"event.field_1__lte:numeric": "36.6"}, False),
        ({"event.field_2.field_3__in": "value,none"}, True),
        ({"event.field_2.field_3__nin": "value"}, False),
        ({"event.field_4:integer": "5"}, True),
        ({"event.field_4:integer": "6"}, False),
        ({"event.field_4": "5"}, False),  # a string filter never equals a number
        ({"event.field_4__gte:integer": "5", "event.field_4__lt:integer": "6"}, True),
        ({"event.name__like": "Main%"}, True),
        ({"event.name__like": "M_in entrance"}, True),
        ({"event.name__like": "entrance"}, False),  # LIKE matches the whole value
        ({"event.name__nlike": "%exit%"}, True),
        ({"event.missing": "none"}, True),
        ({"event.missing__neq": "none"}, False),
        ({"event.absent.deeper": "none"}, True),
        ({"event.name__neq": "Exit"}, True),
        ({"event.field_1__gt:numeric": "40"}, False),
    ],
)
def test_general_filters(query: dict[str, str], passes: bool) -> None:
    filters = GeneralFilters.parse({"event_type": "door", **query})
    assert filters.matches("door", ACCOUNT, GENERAL) is passes


def test_general_type_and_account_must_match() -> None:
    filters = GeneralFilters.parse({"event_type": "door", "account_id": ACCOUNT})
    assert filters.matches("door", ACCOUNT, GENERAL)
    assert not filters.matches("window", ACCOUNT, GENERAL)
    assert not filters.matches("door", OTHER, GENERAL)
    assert GeneralFilters.parse({"event_type": "door"}).matches("door", None, GENERAL)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({}, errors.REQUIRED_QUERY_PARAM),
        ({"event_type": ""}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "account_id": "nope"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "sources": "cam1"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "event.a__between": "1"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "event.a:float": "1"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "event.a__like:integer": "1"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "event.a__gt": "none"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "event.a:integer": "1.5"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "event.a:numeric": "nan"}, errors.BAD_QUERY_PARAM),
        ({"event_type": "t", "event.": "1"}, errors.BAD_QUERY_PARAM),
    ],
)
def test_bad_general_filters(query: dict[str, str], code: int) -> None:
    with pytest.raises(errors.LunaError) as exc:
        GeneralFilters.parse(query)
    assert exc.value.code == code and exc.value.http_status == 400


BODY_EVENT = {
    "upper_body": {
        "upper_clothing": {"colors": ["black", "white"]},
        "headwear": {"apparent_color": "other", "apparent_state": "present"},
    },
    "lower_body": {
        "lower_garment": {"colors": ["blue"], "type": "trousers"},
        "shoes": {"apparent_color": "white"},
    },
}


@pytest.mark.parametrize(
    ("query", "passes"),
    [
        ({"upper_clothing_colors": "white,red"}, True),
        ({"upper_clothing_colors": "red"}, False),
        ({"lower_garment_colors": "blue"}, True),
        ({"lower_garment_types": "skirt,trousers"}, True),
        ({"lower_garment_types": "shorts"}, False),
        ({"shoes_colors": "white"}, True),
        ({"headwear_colors": "black"}, False),
        ({"headwear_colors": "other"}, True),
        ({"headwear_states": "1"}, True),
    ],
)
def test_body_colour_filters(query: dict[str, str], passes: bool) -> None:
    assert Filters.parse(query).matches(BODY_EVENT) is passes


@pytest.mark.parametrize(
    "query",
    [
        {"upper_clothing_colors": "violet"},
        {"shoes_colors": "blue"},  # not in the short palette
        {"lower_garment_types": "0"},
    ],
)
def test_bad_colour_filters(query: dict[str, str]) -> None:
    with pytest.raises(errors.LunaError) as exc:
        Filters.parse(query)
    assert exc.value.code == errors.BAD_QUERY_PARAM


async def test_user_published_events_reach_matching_subscribers_of_the_account() -> None:
    hub = Hub()
    cam1 = Subscription(ACCOUNT, Filters.parse({"sources": "cam1"}))
    everything = Subscription(ACCOUNT, Filters())
    other = Subscription(OTHER, Filters())
    hub.subscriptions |= {cam1, everything, other}
    batch = {
        "events": [{"source": "cam1", "n": 1}, {"source": "cam2", "n": 2}],
        "handler_id": HANDLER,
        "event_create_time": "2026-12-07T10:00:00Z",
        "event_end_time": "2026-12-07T10:00:01Z",
    }
    assert hub.dispatch_user(ACCOUNT, batch, "rid") == 3
    first = orjson.loads(await asyncio.wait_for(cam1.queue.get(), 1))
    assert first == {
        "event": {"source": "cam1", "n": 1},
        "handler_id": HANDLER,
        "event-create-time": "2026-12-07T10:00:00Z",
        "event-end-time": "2026-12-07T10:00:01Z",
        "Luna-Request-id": "rid",
    }
    assert cam1.queue.empty() and everything.queue.qsize() == 2 and other.queue.empty()


async def test_general_events_reach_subscribers_of_their_type() -> None:
    hub = Hub()
    door = GeneralSubscription(GeneralFilters.parse({"event_type": "door"}))
    warm = GeneralSubscription(
        GeneralFilters.parse({"event_type": "door", "event.field_1__gt:numeric": "37"})
    )
    window = GeneralSubscription(GeneralFilters.parse({"event_type": "window"}))
    hub.general |= {door, warm, window}
    batch = {
        "events": [GENERAL, {"field_1": 36.0}],
        "event_type": "door",
        "account_id": ACCOUNT,
        "event_create_time": "2026-12-07T10:00:00Z",
    }
    assert hub.dispatch_general(batch) == 3
    got = orjson.loads(await asyncio.wait_for(warm.queue.get(), 1))
    assert got == {
        "event": GENERAL,
        "event_type": "door",
        "account_id": ACCOUNT,
        "event-create-time": "2026-12-07T10:00:00Z",
        "event-end-time": None,
    }
    assert door.queue.qsize() == 2 and window.queue.empty() and warm.queue.empty()

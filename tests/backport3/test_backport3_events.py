"""Backport 3's ws events as LUNA 5 events: what a /4 operation saves passes the events
service's save-event schema, and the event the service stores and publishes gives back LUNA
3's `message_from_ws` (authorization included), which the /4/ws filters judge."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import make_mocked_request
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.events.v1 import events_pb2, handlers_pb2

from services.common import errors
from services.common.pbjson import from_struct, to_struct
from services.events.event_schema import INPUT_EVENT_SCHEMA
from services.events.event_shape import build_row
from services.gateway.backport3 import events as bp3_events
from services.gateway.backport3.core import Caller
from services.gateway.backport3.ws import Filters

ACCOUNT = str(uuid.uuid4())
TOKEN = str(uuid.uuid4())
LIST = str(uuid.uuid4())
PROBE = str(uuid.uuid4())
DESC = str(uuid.uuid4())
PERSON = str(uuid.uuid4())
TOKEN_CALLER = Caller(ACCOUNT, TOKEN, "south camera")
IDENTIFY = {
    "candidates": [
        {"person_id": PERSON, "descriptor_id": DESC, "similarity": 0.91, "user_data": "x",
         "external_id": "nasa-1", "create_time": "2026-12-07T10:00:00.000000Z"},
    ]
}  # fmt: skip
EXTRACT = {
    "faces": [
        {"id": DESC, "score": 0.99, "rect": {"x": 10, "y": 20, "width": 100, "height": 120},
         "attributes": {"age": 35.5, "gender": 1, "eyeglasses": 0.0}},
    ]
}  # fmt: skip


def stored(event: dict[str, Any]) -> dict[str, Any]:
    """What the events service publishes on EVENTS for a saved event (its GET shape)."""
    raw = INPUT_EVENT_SCHEMA.validate(from_struct(to_struct(event)), prefix="event")
    row = build_row(
        raw,
        event_id=str(uuid.uuid4()),
        account_id=ACCOUNT,
        handler_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
    )
    return row.data


def identify_event(c: Caller = TOKEN_CALLER) -> dict[str, Any]:
    return bp3_events.build_event(
        c, "match", "identify", result=IDENTIFY, template={"descriptor_id": PROBE},
        candidate={"list_id": LIST, "list_data": "staff", "list_type": 1}, timestamp=1765101600.25,
    )  # fmt: skip


def test_a_match_event_gives_back_the_luna3_message() -> None:
    event = stored(identify_event())
    assert event["source"] == "identify" and event["tags"] == ["backport3", "match"]
    assert event["create_time"] == "2025-12-07T10:00:00.250000Z"
    # LUNA 5 sees the match: the matched descriptor is the top match.
    assert event["top_match"]["face_id"] == DESC
    assert event["top_match"]["similarity"] == pytest.approx(0.91)
    # The token itself is not in the event, only its hash.
    assert TOKEN not in str(event)
    auth = event["meta"]["backport3"]["authorization"]
    assert auth["token_sha256"] == hashlib.sha256(TOKEN.encode()).hexdigest()

    record = bp3_events.record_of(event)
    assert record is not None
    message = bp3_events.message(event, record, {auth["token_sha256"]: TOKEN})
    assert message == {
        "timestamp": 1765101600.25,
        "event_type": "match",
        "source": "identify",
        "authorization": {"token_id": TOKEN, "token_data": "south camera"},
        "result": IDENTIFY,
        "template": {"descriptor_id": PROBE},
        "candidate": {"list_id": LIST, "list_data": "staff", "list_type": 1},
    }
    # A token deleted since: no id any more.
    assert bp3_events.message(event, record, {})["authorization"]["token_id"] is None


def test_an_extract_event_by_basic_auth() -> None:
    event = stored(
        bp3_events.build_event(Caller(ACCOUNT), "extract", "descriptors", result=EXTRACT)
    )
    assert event["match_result"] in (None, []) and event["tags"] == ["backport3", "extract"]
    record = bp3_events.record_of(event)
    assert record is not None
    message = bp3_events.message(event, record, {})
    assert message["authorization"] == "basic" and message["result"] == EXTRACT
    assert "template" not in message and "candidate" not in message


def test_other_events_are_not_backport3s() -> None:
    assert bp3_events.record_of({"tags": ["backport3"], "meta": None}) is None
    assert (
        bp3_events.record_of({"tags": [], "meta": {"backport3": {"event_type": "match"}}}) is None
    )
    assert bp3_events.record_of(stored({"source": "camera", "tags": ["backport3"]})) is None


def filters(**query: str) -> Filters:
    return Filters(make_mocked_request("GET", "/4/ws?" + urlencode(query)))


def test_ws_filters_judge_the_stored_record() -> None:
    match = bp3_events.record_of(stored(identify_event()))
    extract = bp3_events.record_of(
        stored(bp3_events.build_event(Caller(ACCOUNT), "extract", "descriptors", result=EXTRACT))
    )
    assert match is not None and extract is not None
    assert filters().passes(match) and filters().passes(extract)
    assert filters(event_type="match").passes(match)
    assert not filters(event_type="match").passes(extract)
    assert filters(observe=TOKEN).passes(match) and not filters(observe=TOKEN).passes(extract)
    assert filters(observe="basic").passes(extract) and not filters(observe="basic").passes(match)
    assert filters(list=LIST).passes(match)
    assert not filters(list=str(uuid.uuid4())).passes(match)
    assert filters(similarity__gt="0.9").passes(match)
    assert not filters(similarity__gt="0.95").passes(match)
    assert filters(gender="male").passes(extract) and not filters(gender="female").passes(extract)
    assert filters(age__gt="30", age__lt="40").passes(extract)
    assert not filters(age__gt="40").passes(extract)


def test_ws_filters_refuse_bad_values() -> None:
    for query in ({"event_type": "other"}, {"observe": "nobody"}, {"list": "x"}, {"age__gt": "y"}):
        with pytest.raises(errors.LunaError) as got:
            filters(**query)
        assert got.value.code == errors.BAD_QUERY_PARAM


class FakeBackport3:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.calls = 0

    async def ListTokens(self, request: Any) -> Any:
        self.calls += 1
        page = [bpb.Token(token_id=t, account_id=request.account_id) for t in self.tokens]
        return bpb.ListTokensResponse(tokens=page, count=len(page))


class FakeClients:
    def __init__(self, tokens: list[str]) -> None:
        self.backport3 = FakeBackport3(tokens)


async def test_tokens_are_read_once_and_again_only_for_an_unknown_hash() -> None:
    clients = FakeClients([TOKEN])
    tokens = bp3_events.Tokens(ACCOUNT, refresh_s=0.0)
    wanted = bp3_events.token_hash(TOKEN)
    assert await tokens.resolve(clients, wanted) == {wanted: TOKEN}
    assert await tokens.resolve(clients, wanted) == {wanted: TOKEN}
    assert clients.backport3.calls == 1
    other = str(uuid.uuid4())
    clients.backport3.tokens.append(other)
    assert other in (await tokens.resolve(clients, bp3_events.token_hash(other))).values()
    assert clients.backport3.calls == 2


class FakeEventsService:
    """ListHandlers/CreateHandler of the events service's HandlersService and its
    SaveEvents; `lose` handler ids answer 34000 as a handler deleted through /6 does."""

    def __init__(self) -> None:
        self.handlers: list[handlers_pb2.Handler] = []
        self.saved: list[tuple[str, dict[str, Any]]] = []
        self.lose: set[str] = set()

    async def ListHandlers(self, request: Any) -> Any:
        assert request.filter.description == bp3_events.HANDLER_DESCRIPTION
        found = [h for h in self.handlers if h.account_id == request.scope.account_id]
        return handlers_pb2.ListHandlersResponse(handlers=found[::-1])  # newest first

    async def CreateHandler(self, request: Any) -> Any:
        assert request.fields.handler_type == 1  # dynamic
        h = handlers_pb2.Handler(
            handler_id=str(uuid.uuid4()),
            account_id=request.scope.account_id,
            description=request.fields.description,
            handler_type=1,
        )
        h.create_time.FromSeconds(len(self.handlers))
        self.handlers.append(h)
        return handlers_pb2.CreateHandlerResponse(handler=h)

    async def SaveEvents(self, request: Any) -> Any:
        if request.handler_id in self.lose:
            raise errors.LunaError(errors.HANDLER_NOT_FOUND)
        assert not request.wait_saving and not request.from_client
        self.saved.append((request.handler_id, from_struct(request.events[0].event)))
        return events_pb2.SaveEventsResponse(event_ids=[str(uuid.uuid4())])


async def test_record_event_saves_under_the_accounts_one_handler() -> None:
    service = FakeEventsService()
    clients = SimpleNamespace(handlers=service, events=service)
    main = {bp3_events.HANDLERS_KEY: bp3_events.EventHandlers()}
    request = SimpleNamespace(app={"bp3_main": main, "clients": clients})
    await bp3_events.record_event(request, TOKEN_CALLER, "match", "verify", result=IDENTIFY)
    await bp3_events.record_event(request, Caller(ACCOUNT), "extract", "descriptors", result={})
    (handler,) = service.handlers
    assert [h for h, _ in service.saved] == [handler.handler_id] * 2
    assert service.saved[0][1]["meta"]["backport3"]["result"] == IDENTIFY
    # Deleted through /6: the next event makes a new one and is saved there.
    service.lose.add(handler.handler_id)
    service.handlers.clear()
    await bp3_events.record_event(request, Caller(ACCOUNT), "extract", "descriptors", result={})
    (again,) = service.handlers
    assert service.saved[-1][0] == again.handler_id != handler.handler_id
    # A failure is logged, not raised: the /4 answer stands.
    service.lose.add(again.handler_id)
    await bp3_events.record_event(request, Caller(ACCOUNT), "extract", "descriptors", result={})
    assert len(service.saved) == 3


async def test_the_oldest_handler_wins_when_two_were_made() -> None:
    service = FakeEventsService()
    clients = SimpleNamespace(handlers=service)
    other = bp3_events.EventHandlers()
    first = await bp3_events.EventHandlers().get(clients, TOKEN_CALLER)
    await service.CreateHandler(
        handlers_pb2.CreateHandlerRequest(
            scope={"account_id": ACCOUNT},
            fields={"description": bp3_events.HANDLER_DESCRIPTION, "handler_type": 1},
        )
    )
    assert await other.get(clients, TOKEN_CALLER) == first

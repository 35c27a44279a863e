"""The store's gRPC adapters called directly (no server) on the real cores: each RPC reaches
its core call and answers its response type."""

from __future__ import annotations

import struct

from google.protobuf import struct_pb2
from luna.common.v1 import info_pb2
from luna.events.v1 import events_pb2, handlers_pb2, verifiers_pb2

from services.events.events import FACE
from services.events.grpc_service import EventsServicer, HandlersServicer, VerifiersServicer

from .conftest import World


def _struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


async def test_handlers_and_verifiers(world: World) -> None:
    scope = {"account_id": world.alice.account_id}
    h = HandlersServicer(world.handlers)
    created = (
        await h.CreateHandler(
            handlers_pb2.CreateHandlerRequest(
                scope=scope, fields=handlers_pb2.HandlerFields(description="door")
            ),
            None,
        )
    ).handler
    hid = created.handler_id
    got = await h.GetHandler(handlers_pb2.GetHandlerRequest(scope=scope, handler_id=hid), None)
    assert got.handler.description == "door"
    found = await h.ListHandlers(handlers_pb2.ListHandlersRequest(scope=scope), None)
    assert [x.handler_id for x in found.handlers] == [hid]
    n = await h.CountHandlers(handlers_pb2.CountHandlersRequest(scope=scope), None)
    assert n.count == 1
    replaced = await h.ReplaceHandler(
        handlers_pb2.ReplaceHandlerRequest(
            scope=scope, handler_id=hid, fields=handlers_pb2.HandlerFields(description="gate")
        ),
        None,
    )
    assert replaced.handler.description == "gate"
    await h.DeleteHandler(handlers_pb2.DeleteHandlerRequest(scope=scope, handler_id=hid), None)
    n = await h.CountHandlers(handlers_pb2.CountHandlersRequest(scope=scope), None)
    assert n.count == 0

    v = VerifiersServicer(world.verifiers)
    policies = _struct({"verification_threshold": 0.7})
    vid = (
        await v.CreateVerifier(
            verifiers_pb2.CreateVerifierRequest(scope=scope, description="x", policies=policies),
            None,
        )
    ).verifier.verifier_id
    get_v = verifiers_pb2.GetVerifierRequest(scope=scope, verifier_id=vid)
    got_v = await v.GetVerifier(get_v, None)
    assert got_v.verifier.policies["verification_threshold"] == 0.7
    listed = await v.ListVerifiers(verifiers_pb2.ListVerifiersRequest(scope=scope), None)
    assert [x.verifier_id for x in listed.verifiers] == [vid]
    replaced_v = await v.ReplaceVerifier(
        verifiers_pb2.ReplaceVerifierRequest(
            scope=scope, verifier_id=vid, description="y", policies=policies
        ),
        None,
    )
    assert replaced_v.verifier.version == 2
    await v.DeleteVerifier(verifiers_pb2.DeleteVerifierRequest(scope=scope, verifier_id=vid), None)
    counted = await v.CountVerifiers(verifiers_pb2.CountVerifiersRequest(scope=scope), None)
    assert counted.count == 0


async def test_events(world: World) -> None:
    scope = {"account_id": world.alice.account_id}
    hid = (
        await HandlersServicer(world.handlers).CreateHandler(
            handlers_pb2.CreateHandlerRequest(scope=scope, fields=handlers_pb2.HandlerFields()),
            None,
        )
    ).handler.handler_id
    e = EventsServicer(world.events, world.stats, info_pb2.ServiceInfo(name="events"))
    assert (await e.GetInfo(events_pb2.GetInfoRequest(), None)).info.name == "events"
    desc = struct.pack("<2f", 0.6, 0.8)
    saved = await e.SaveEvents(
        events_pb2.SaveEventsRequest(
            scope=scope,
            handler_id=hid,
            wait_saving=True,
            events=[
                events_pb2.EventInput(
                    event=_struct({"source": "cam", "tags": ["a"]}),
                    descriptors=[
                        events_pb2.EventDescriptor(kind=FACE, descriptor=desc, version=59)
                    ],
                )
            ],
        ),
        None,
    )
    (eid,) = saved.event_ids
    got = await e.GetEvent(events_pb2.GetEventRequest(scope=scope, event_id=eid), None)
    assert got.event.data["source"] == "cam"
    flt = events_pb2.EventFilter(handler_ids=[hid])
    listed = await e.ListEvents(events_pb2.ListEventsRequest(scope=scope, filter=flt), None)
    assert [x.event_id for x in listed.events] == [eid]
    counted = await e.CountEvents(events_pb2.CountEventsRequest(scope=scope, filter=flt), None)
    assert counted.count == 1
    stats = await e.GetEventStatistics(
        events_pb2.GetEventStatisticsRequest(
            scope=scope, targets=[events_pb2.StatTarget(column="event_id", aggregator="count")]
        ),
        None,
    )
    assert list(stats.fields) == ["count_event_id"] and stats.stats[0].values[0].number_value == 1
    descs = await e.GetEventDescriptors(
        events_pb2.GetEventDescriptorsRequest(scope=scope, kind=FACE, version=59), None
    )
    assert [(d.event_id, d.descriptor) for d in descs.descriptors] == [(eid, desc)]
    cands = await e.SelectEventCandidates(
        events_pb2.SelectEventCandidatesRequest(
            scope=scope, filters=_struct({"handler_ids": [hid]}), kind=FACE, version=59
        ),
        None,
    )
    assert [c.event_id for c in cands.candidates] == [eid]
    assert cands.candidates[0].event["handler_id"] == hid
    dropped = await e.DeleteEventDescriptors(
        events_pb2.DeleteEventDescriptorsRequest(
            scope=scope, kind=FACE, version=59, event_ids=[eid]
        ),
        None,
    )
    assert list(dropped.event_ids) == [eid]
    deleted = await e.DeleteEvents(
        events_pb2.DeleteEventsRequest(scope=scope, event_ids=[eid]), None
    )
    assert [x.event_id for x in deleted.events] == [eid]

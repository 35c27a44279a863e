"""Thin gRPC adapters: protobuf <-> core types, nothing else."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
from luna.common.v1 import info_pb2
from luna.events.v1 import (
    events_pb2,
    events_pb2_grpc,
    handlers_pb2,
    handlers_pb2_grpc,
    verifiers_pb2,
    verifiers_pb2_grpc,
)

from services.common import logs, times
from services.common.grpc_server import counting, getting, listing, unary
from services.common.pbjson import (
    dataclass_of,
    from_struct,
    from_value,
    message_of,
    to_list_value,
    to_struct,
)
from services.common.scoping import Scope
from services.common.version import VERSION
from services.events import events_bulk, statistics
from services.events.candidates import EventCandidate, select_requested
from services.events.events import (
    DescriptorIn,
    EventFilter,
    EventIn,
    Events,
    MetaFilter,
    Nullable,
    StoredEvent,
)
from services.events.handlers import Handler, HandlerFields, HandlerFilter, Handlers
from services.events.policies import validate_handler_policies
from services.events.verifiers import Verifier, Verifiers

Ctx = grpc.aio.ServicerContext
# The store's gRPC services (the pipeline's PipelineService is wired by pipeline.wiring).
SERVICES = (events_pb2, handlers_pb2, verifiers_pb2)


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


# -- handlers ----------------------------------------------------------------------------------


def handler_pb(h: Handler) -> handlers_pb2.Handler:
    return message_of(handlers_pb2.Handler, h)


def handler_fields(pb: handlers_pb2.HandlerFields) -> HandlerFields:
    return HandlerFields(
        description=pb.description,
        handler_type=pb.handler_type,
        policies=from_struct(pb.policies) if pb.HasField("policies") else None,
        lambda_id=pb.lambda_id,
    )


def handler_filter(pb: handlers_pb2.HandlerFilter) -> HandlerFilter:
    return dataclass_of(HandlerFilter, pb)


class HandlersServicer(handlers_pb2_grpc.HandlersServiceServicer):
    def __init__(self, handlers: Handlers) -> None:
        self._h = handlers

    CreateHandler = unary(
        lambda s, r: s._h.create(Scope.from_pb(r.scope), handler_fields(r.fields)),
        lambda h: handlers_pb2.CreateHandlerResponse(handler=handler_pb(h)),
    )
    GetHandler = getting(
        "_h", "handler_id", lambda h: handlers_pb2.GetHandlerResponse(handler=handler_pb(h))
    )
    ListHandlers = listing(
        "_h",
        handler_filter,
        lambda found: handlers_pb2.ListHandlersResponse(handlers=[handler_pb(h) for h in found]),
    )
    CountHandlers = counting(
        "_h", handler_filter, lambda n: handlers_pb2.CountHandlersResponse(count=n)
    )
    ReplaceHandler = unary(
        lambda s, r: s._h.replace(Scope.from_pb(r.scope), r.handler_id, handler_fields(r.fields)),
        lambda h: handlers_pb2.ReplaceHandlerResponse(handler=handler_pb(h)),
    )
    DeleteHandler = unary(
        lambda s, r: s._h.delete(Scope.from_pb(r.scope), r.handler_id),
        lambda _: handlers_pb2.DeleteHandlerResponse(),
    )

    async def ValidatePolicies(
        self, request: handlers_pb2.ValidatePoliciesRequest, context: Ctx
    ) -> handlers_pb2.ValidatePoliciesResponse:
        checked = validate_handler_policies(from_struct(request.policies))
        return handlers_pb2.ValidatePoliciesResponse(policies=to_struct(checked))


# -- verifiers ---------------------------------------------------------------------------------


def verifier_pb(v: Verifier) -> verifiers_pb2.Verifier:
    return message_of(verifiers_pb2.Verifier, v)


class VerifiersServicer(verifiers_pb2_grpc.VerifiersServiceServicer):
    def __init__(self, verifiers: Verifiers) -> None:
        self._v = verifiers

    CreateVerifier = unary(
        lambda s, r: s._v.create(
            Scope.from_pb(r.scope), description=r.description, policies=from_struct(r.policies)
        ),
        lambda v: verifiers_pb2.CreateVerifierResponse(verifier=verifier_pb(v)),
    )
    GetVerifier = getting(
        "_v", "verifier_id", lambda v: verifiers_pb2.GetVerifierResponse(verifier=verifier_pb(v))
    )
    ListVerifiers = unary(
        lambda s, r: s._v.list(
            Scope.from_pb(r.scope),
            description=_opt(r.filter, "description"),
            page=r.page.page,
            page_size=r.page.page_size,
        ),
        lambda found: verifiers_pb2.ListVerifiersResponse(
            verifiers=[verifier_pb(v) for v in found]
        ),
    )
    CountVerifiers = unary(
        lambda s, r: s._v.count(Scope.from_pb(r.scope), description=_opt(r.filter, "description")),
        lambda n: verifiers_pb2.CountVerifiersResponse(count=n),
    )
    ReplaceVerifier = unary(
        lambda s, r: s._v.replace(
            Scope.from_pb(r.scope),
            r.verifier_id,
            description=r.description,
            policies=from_struct(r.policies),
        ),
        lambda v: verifiers_pb2.ReplaceVerifierResponse(verifier=verifier_pb(v)),
    )
    DeleteVerifier = unary(
        lambda s, r: s._v.delete(Scope.from_pb(r.scope), r.verifier_id),
        lambda _: verifiers_pb2.DeleteVerifierResponse(),
    )


# -- events ------------------------------------------------------------------------------------


def event_pb(e: StoredEvent) -> events_pb2.Event:
    return message_of(events_pb2.Event, e)


def _nullable(msg: Any, name: str) -> Nullable:
    if not msg.HasField(name):
        return Nullable()
    value = getattr(msg, name)
    return Nullable(tuple(value.values), value.with_null)


def event_filter(pb: events_pb2.EventFilter) -> EventFilter:
    """The proto filter as the core's: each EventFilter field from the proto field of the same
    name (the dataclass is the one list of filters); meta and the nullable sets by hand."""
    meta = tuple(
        MetaFilter(m.path, m.operator or "eq", m.type or "string", tuple(m.values), m.with_null)
        for m in pb.meta
    )
    nullable = {
        f.name: _nullable(pb, f.name)
        for f in dataclasses.fields(EventFilter)
        if isinstance(f.default, Nullable)
    }
    return dataclass_of(EventFilter, pb, meta=meta, **nullable)


def events_in(request: events_pb2.SaveEventsRequest) -> list[EventIn]:
    return [
        EventIn(
            event=from_struct(e.event),
            event_id=e.event_id,
            descriptors=tuple(DescriptorIn(d.kind, d.descriptor, d.version) for d in e.descriptors),
        )
        for e in request.events
    ]


def deleted_pb(removed: dict[str, Any]) -> events_pb2.DeletedEvent:
    return events_pb2.DeletedEvent(
        event_id=removed["event_id"],
        face_sample_ids=removed["face"],
        body_sample_ids=removed["body"],
        image_origins=removed["origins"],
    )


def candidate_pb(c: EventCandidate) -> events_pb2.EventCandidate:
    return events_pb2.EventCandidate(
        event_id=c.event_id, descriptor=c.descriptor, version=c.version, event=to_struct(c.event)
    )


def statistics_of(
    stats: statistics.Statistics, r: events_pb2.GetEventStatisticsRequest
) -> Awaitable[tuple[list[str], list[list[Any]]]]:
    return stats.compute(
        Scope.from_pb(r.scope),
        [statistics.Target(t.column, t.aggregator) for t in r.targets],
        [statistics.Filter(f.column, f.operator, from_value(f.value)) for f in r.filters],
        period_start=times.from_optional(r, "period_start"),
        period_end=times.from_optional(r, "period_end"),
        group_by=r.group_by,
    )


class EventsServicer(events_pb2_grpc.EventsServiceServicer):
    def __init__(
        self, events: Events, stats: statistics.Statistics, info: info_pb2.ServiceInfo
    ) -> None:
        self._e = events
        self._stats = stats
        self._info = info

    async def GetInfo(
        self, request: events_pb2.GetInfoRequest, context: Ctx
    ) -> events_pb2.GetInfoResponse:
        return events_pb2.GetInfoResponse(info=self._info)

    SaveEvents = unary(
        lambda s, r: s._e.save(
            Scope.from_pb(r.scope),
            r.handler_id,
            events_in(r),
            wait_saving=r.wait_saving,
            from_client=r.from_client,
            request_id=logs.request_id.get(),
        ),
        lambda ids: events_pb2.SaveEventsResponse(event_ids=ids),
    )
    GetEvent = unary(
        lambda s, r: s._e.get(Scope.from_pb(r.scope), r.event_id, list(r.targets)),
        lambda e: events_pb2.GetEventResponse(event=event_pb(e)),
    )
    ListEvents = unary(
        lambda s, r: s._e.list(
            Scope.from_pb(r.scope),
            event_filter(r.filter),
            targets=list(r.targets),
            page=r.page.page,
            page_size=r.page.page_size,
            order=r.order or "desc",
        ),
        lambda found: events_pb2.ListEventsResponse(events=[event_pb(e) for e in found]),
    )
    DeleteEvents = unary(
        lambda s, r: s._e.delete(r.scope.account_id, list(r.event_ids)),
        lambda removed: events_pb2.DeleteEventsResponse(events=[deleted_pb(x) for x in removed]),
    )
    DeleteEventDescriptors = unary(
        lambda s, r: s._e.delete_descriptors(
            r.scope.account_id, r.kind, r.version, list(r.event_ids)
        ),
        lambda removed: events_pb2.DeleteEventDescriptorsResponse(event_ids=removed),
    )
    PutEventDescriptors = unary(
        lambda s, r: s._e.put_descriptors(
            r.scope.account_id,
            r.kind,
            [(d.event_id, d.version, d.descriptor) for d in r.descriptors],
        ),
        lambda added: events_pb2.PutEventDescriptorsResponse(event_ids=added),
    )
    CountEvents = counting("_e", event_filter, lambda n: events_pb2.CountEventsResponse(count=n))
    GetEventStatistics = unary(
        lambda s, r: statistics_of(s._stats, r),
        lambda table: events_pb2.GetEventStatisticsResponse(
            fields=table[0], stats=[to_list_value(row) for row in table[1]]
        ),
    )
    GetEventDescriptors = unary(
        lambda s, r: s._e.descriptors(
            Scope.from_pb(r.scope),
            kind=r.kind,
            version=r.version,
            event_ids=list(r.event_ids),
            event_id_gt=r.event_id_gt,
            limit=r.limit,
        ),
        lambda found: events_pb2.GetEventDescriptorsResponse(
            descriptors=[
                events_pb2.EventDescriptorItem(event_id=i, descriptor=d, version=v)
                for i, d, v in found
            ]
        ),
    )
    SelectEventCandidates = unary(
        lambda s, r: select_requested(
            s._e,
            Scope.from_pb(r.scope),
            from_struct(r.filters),
            kind=r.kind,
            version=r.version,
            limit=r.limit,
        ),
        lambda found: events_pb2.SelectEventCandidatesResponse(
            candidates=[candidate_pb(c) for c in found]
        ),
    )

    async def StreamEventIds(
        self, request: events_pb2.StreamEventIdsRequest, context: Ctx
    ) -> AsyncIterator[events_pb2.StreamEventIdsResponse]:
        async for batch in events_bulk.stream_ids(
            self._e.pool,
            Scope.from_pb(request.scope),
            event_filter(request.filter),
            request.batch_size,
            request.stride,
        ):
            yield events_pb2.StreamEventIdsResponse(event_ids=batch)

    DeleteEventsWhere = unary(
        lambda s, r: events_bulk.delete_where(
            s._e.pool, Scope.from_pb(r.scope), event_filter(r.filter), r.receipt
        ),
        lambda removed: events_pb2.DeleteEventsWhereResponse(
            events_json=removed.events_json.encode(), body_sample_ids=removed.body_samples
        ),
    )


def add_servicers(
    server: grpc.aio.Server,
    events: Events,
    stats: statistics.Statistics,
    handlers: Handlers,
    verifiers: Verifiers,
) -> None:
    info = info_pb2.ServiceInfo(name="events", version=VERSION)
    events_pb2_grpc.add_EventsServiceServicer_to_server(EventsServicer(events, stats, info), server)
    handlers_pb2_grpc.add_HandlersServiceServicer_to_server(HandlersServicer(handlers), server)
    verifiers_pb2_grpc.add_VerifiersServiceServicer_to_server(VerifiersServicer(verifiers), server)

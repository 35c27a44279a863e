"""Thin gRPC adapters: protobuf <-> core types, nothing else."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from luna.common.v1 import account_pb2, info_pb2
from luna.events.v1 import (
    events_pb2,
    events_pb2_grpc,
    handlers_pb2,
    handlers_pb2_grpc,
    verifiers_pb2,
    verifiers_pb2_grpc,
)

from services.common import logs, times
from services.common.pbjson import from_struct, from_value, to_list_value, to_struct
from services.common.scoping import Scope
from services.common.version import VERSION
from services.events import statistics
from services.events.candidates import select_requested
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
SERVICES = tuple(
    pb.DESCRIPTOR.services_by_name[name]
    for pb, name in (
        (events_pb2, "EventsService"),
        (handlers_pb2, "HandlersService"),
        (verifiers_pb2, "VerifiersService"),
    )
)


def scope_of(pb: account_pb2.AccountScope) -> Scope:
    return Scope(pb.account_id, pb.see_all, pb.filter_account_id)


def _ts(value: Any) -> Any:
    return times.to_timestamp(value)


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _time(msg: Any, name: str) -> Any:
    return times.from_timestamp(getattr(msg, name)) if msg.HasField(name) else None


# -- handlers ----------------------------------------------------------------------------------


def handler_pb(h: Handler) -> handlers_pb2.Handler:
    pb = handlers_pb2.Handler(
        handler_id=h.handler_id,
        account_id=h.account_id,
        description=h.description,
        handler_type=h.handler_type,
        lambda_id=h.lambda_id or "",
        create_time=_ts(h.create_time),
        last_update_time=_ts(h.last_update_time),
    )
    if h.policies is not None:
        pb.policies.CopyFrom(to_struct(h.policies))
    return pb


def handler_fields(pb: handlers_pb2.HandlerFields) -> HandlerFields:
    return HandlerFields(
        description=pb.description,
        handler_type=pb.handler_type,
        policies=from_struct(pb.policies) if pb.HasField("policies") else None,
        lambda_id=pb.lambda_id,
    )


def handler_filter(pb: handlers_pb2.HandlerFilter) -> HandlerFilter:
    return HandlerFilter(_opt(pb, "description"), _opt(pb, "handler_type"))


class HandlersServicer(handlers_pb2_grpc.HandlersServiceServicer):
    def __init__(self, handlers: Handlers) -> None:
        self._h = handlers

    async def CreateHandler(
        self, request: handlers_pb2.CreateHandlerRequest, context: Ctx
    ) -> handlers_pb2.CreateHandlerResponse:
        h = await self._h.create(scope_of(request.scope), handler_fields(request.fields))
        return handlers_pb2.CreateHandlerResponse(handler=handler_pb(h))

    async def GetHandler(
        self, request: handlers_pb2.GetHandlerRequest, context: Ctx
    ) -> handlers_pb2.GetHandlerResponse:
        h = await self._h.get(scope_of(request.scope), request.handler_id)
        return handlers_pb2.GetHandlerResponse(handler=handler_pb(h))

    async def ListHandlers(
        self, request: handlers_pb2.ListHandlersRequest, context: Ctx
    ) -> handlers_pb2.ListHandlersResponse:
        found = await self._h.list(
            scope_of(request.scope),
            handler_filter(request.filter),
            page=request.page.page,
            page_size=request.page.page_size,
        )
        return handlers_pb2.ListHandlersResponse(handlers=[handler_pb(h) for h in found])

    async def CountHandlers(
        self, request: handlers_pb2.CountHandlersRequest, context: Ctx
    ) -> handlers_pb2.CountHandlersResponse:
        n = await self._h.count(scope_of(request.scope), handler_filter(request.filter))
        return handlers_pb2.CountHandlersResponse(count=n)

    async def ReplaceHandler(
        self, request: handlers_pb2.ReplaceHandlerRequest, context: Ctx
    ) -> handlers_pb2.ReplaceHandlerResponse:
        h = await self._h.replace(
            scope_of(request.scope), request.handler_id, handler_fields(request.fields)
        )
        return handlers_pb2.ReplaceHandlerResponse(handler=handler_pb(h))

    async def DeleteHandler(
        self, request: handlers_pb2.DeleteHandlerRequest, context: Ctx
    ) -> handlers_pb2.DeleteHandlerResponse:
        await self._h.delete(scope_of(request.scope), request.handler_id)
        return handlers_pb2.DeleteHandlerResponse()

    async def ValidatePolicies(
        self, request: handlers_pb2.ValidatePoliciesRequest, context: Ctx
    ) -> handlers_pb2.ValidatePoliciesResponse:
        checked = validate_handler_policies(from_struct(request.policies))
        return handlers_pb2.ValidatePoliciesResponse(policies=to_struct(checked))


# -- verifiers ---------------------------------------------------------------------------------


def verifier_pb(v: Verifier) -> verifiers_pb2.Verifier:
    return verifiers_pb2.Verifier(
        verifier_id=v.verifier_id,
        account_id=v.account_id,
        description=v.description,
        policies=to_struct(v.policies),
        version=v.version,
        create_time=_ts(v.create_time),
        last_update_time=_ts(v.last_update_time),
    )


class VerifiersServicer(verifiers_pb2_grpc.VerifiersServiceServicer):
    def __init__(self, verifiers: Verifiers) -> None:
        self._v = verifiers

    async def CreateVerifier(
        self, request: verifiers_pb2.CreateVerifierRequest, context: Ctx
    ) -> verifiers_pb2.CreateVerifierResponse:
        v = await self._v.create(
            scope_of(request.scope),
            description=request.description,
            policies=from_struct(request.policies),
        )
        return verifiers_pb2.CreateVerifierResponse(verifier=verifier_pb(v))

    async def GetVerifier(
        self, request: verifiers_pb2.GetVerifierRequest, context: Ctx
    ) -> verifiers_pb2.GetVerifierResponse:
        v = await self._v.get(scope_of(request.scope), request.verifier_id)
        return verifiers_pb2.GetVerifierResponse(verifier=verifier_pb(v))

    async def ListVerifiers(
        self, request: verifiers_pb2.ListVerifiersRequest, context: Ctx
    ) -> verifiers_pb2.ListVerifiersResponse:
        found = await self._v.list(
            scope_of(request.scope),
            description=_opt(request.filter, "description"),
            page=request.page.page,
            page_size=request.page.page_size,
        )
        return verifiers_pb2.ListVerifiersResponse(verifiers=[verifier_pb(v) for v in found])

    async def CountVerifiers(
        self, request: verifiers_pb2.CountVerifiersRequest, context: Ctx
    ) -> verifiers_pb2.CountVerifiersResponse:
        n = await self._v.count(
            scope_of(request.scope), description=_opt(request.filter, "description")
        )
        return verifiers_pb2.CountVerifiersResponse(count=n)

    async def ReplaceVerifier(
        self, request: verifiers_pb2.ReplaceVerifierRequest, context: Ctx
    ) -> verifiers_pb2.ReplaceVerifierResponse:
        v = await self._v.replace(
            scope_of(request.scope),
            request.verifier_id,
            description=request.description,
            policies=from_struct(request.policies),
        )
        return verifiers_pb2.ReplaceVerifierResponse(verifier=verifier_pb(v))

    async def DeleteVerifier(
        self, request: verifiers_pb2.DeleteVerifierRequest, context: Ctx
    ) -> verifiers_pb2.DeleteVerifierResponse:
        await self._v.delete(scope_of(request.scope), request.verifier_id)
        return verifiers_pb2.DeleteVerifierResponse()


# -- events ------------------------------------------------------------------------------------


def event_pb(e: StoredEvent) -> events_pb2.Event:
    return events_pb2.Event(
        event_id=e.event_id,
        account_id=e.account_id,
        handler_id=e.handler_id,
        create_time=_ts(e.create_time),
        end_time=_ts(e.end_time),
        data=to_struct(e.data),
    )


def _nullable(msg: Any, name: str) -> Nullable:
    if not msg.HasField(name):
        return Nullable()
    value = getattr(msg, name)
    return Nullable(tuple(value.values), value.with_null)


def event_filter(pb: events_pb2.EventFilter) -> EventFilter:
    """The proto filter as the core's: each EventFilter field from the proto field of the same
    name, read by the kind its default says (the dataclass is the one list of filters)."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(EventFilter):
        if f.name == "meta":
            kwargs["meta"] = tuple(
                MetaFilter(
                    m.path, m.operator or "eq", m.type or "string", tuple(m.values), m.with_null
                )
                for m in pb.meta
            )
        elif isinstance(f.default, Nullable):
            kwargs[f.name] = _nullable(pb, f.name)
        elif f.default == ():
            kwargs[f.name] = tuple(getattr(pb, f.name))
        elif f.default is None:
            value = _opt(pb, f.name)
            kwargs[f.name] = times.from_timestamp(value) if isinstance(value, Timestamp) else value
        else:
            kwargs[f.name] = getattr(pb, f.name)
    return EventFilter(**kwargs)


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

    async def SaveEvents(
        self, request: events_pb2.SaveEventsRequest, context: Ctx
    ) -> events_pb2.SaveEventsResponse:
        ids = await self._e.save(
            scope_of(request.scope),
            request.handler_id,
            [
                EventIn(
                    event=from_struct(e.event),
                    event_id=e.event_id,
                    descriptors=tuple(
                        DescriptorIn(d.kind, d.descriptor, d.version) for d in e.descriptors
                    ),
                )
                for e in request.events
            ],
            wait_saving=request.wait_saving,
            from_client=request.from_client,
            request_id=logs.request_id.get(),
        )
        return events_pb2.SaveEventsResponse(event_ids=ids)

    async def GetEvent(
        self, request: events_pb2.GetEventRequest, context: Ctx
    ) -> events_pb2.GetEventResponse:
        e = await self._e.get(scope_of(request.scope), request.event_id, list(request.targets))
        return events_pb2.GetEventResponse(event=event_pb(e))

    async def ListEvents(
        self, request: events_pb2.ListEventsRequest, context: Ctx
    ) -> events_pb2.ListEventsResponse:
        found = await self._e.list(
            scope_of(request.scope),
            event_filter(request.filter),
            targets=list(request.targets),
            page=request.page.page,
            page_size=request.page.page_size,
            order=request.order or "desc",
        )
        return events_pb2.ListEventsResponse(events=[event_pb(e) for e in found])

    async def DeleteEvents(
        self, request: events_pb2.DeleteEventsRequest, context: Ctx
    ) -> events_pb2.DeleteEventsResponse:
        removed = await self._e.delete(request.scope.account_id, list(request.event_ids))
        return events_pb2.DeleteEventsResponse(
            events=[
                events_pb2.DeletedEvent(
                    event_id=r["event_id"],
                    face_sample_ids=r["face"],
                    body_sample_ids=r["body"],
                    image_origins=r["origins"],
                )
                for r in removed
            ]
        )

    async def DeleteEventDescriptors(
        self, request: events_pb2.DeleteEventDescriptorsRequest, context: Ctx
    ) -> events_pb2.DeleteEventDescriptorsResponse:
        removed = await self._e.delete_descriptors(
            request.scope.account_id, request.kind, request.version, list(request.event_ids)
        )
        return events_pb2.DeleteEventDescriptorsResponse(event_ids=removed)

    async def CountEvents(
        self, request: events_pb2.CountEventsRequest, context: Ctx
    ) -> events_pb2.CountEventsResponse:
        n = await self._e.count(scope_of(request.scope), event_filter(request.filter))
        return events_pb2.CountEventsResponse(count=n)

    async def GetEventStatistics(
        self, request: events_pb2.GetEventStatisticsRequest, context: Ctx
    ) -> events_pb2.GetEventStatisticsResponse:
        fields, rows = await self._stats.compute(
            scope_of(request.scope),
            [statistics.Target(t.column, t.aggregator) for t in request.targets],
            [statistics.Filter(f.column, f.operator, from_value(f.value)) for f in request.filters],
            period_start=_time(request, "period_start"),
            period_end=_time(request, "period_end"),
            group_by=request.group_by,
        )
        return events_pb2.GetEventStatisticsResponse(
            fields=fields, stats=[to_list_value(r) for r in rows]
        )

    async def GetEventDescriptors(
        self, request: events_pb2.GetEventDescriptorsRequest, context: Ctx
    ) -> events_pb2.GetEventDescriptorsResponse:
        found = await self._e.descriptors(
            scope_of(request.scope),
            kind=request.kind,
            version=request.version,
            event_ids=list(request.event_ids),
            event_id_gt=request.event_id_gt,
            limit=request.limit,
        )
        return events_pb2.GetEventDescriptorsResponse(
            descriptors=[
                events_pb2.EventDescriptorItem(event_id=i, descriptor=d, version=v)
                for i, d, v in found
            ]
        )

    async def SelectEventCandidates(
        self, request: events_pb2.SelectEventCandidatesRequest, context: Ctx
    ) -> events_pb2.SelectEventCandidatesResponse:
        found = await select_requested(
            self._e,
            scope_of(request.scope),
            from_struct(request.filters),
            kind=request.kind,
            version=request.version,
            limit=request.limit,
        )
        return events_pb2.SelectEventCandidatesResponse(
            candidates=[
                events_pb2.EventCandidate(
                    event_id=c.event_id,
                    descriptor=c.descriptor,
                    version=c.version,
                    event=to_struct(c.event),
                )
                for c in found
            ]
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

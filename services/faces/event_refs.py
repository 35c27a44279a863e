"""Events a face may refer to, asked of the events service through its gRPC API."""

from __future__ import annotations

import grpc
from luna.common.v1 import account_pb2
from luna.events.v1 import events_pb2, events_pb2_grpc

from services.common import errors, grpc_client
from services.faces.faces import EventLookup

# A face creation waits this long for the events service, then answers its timeout error.
LOOKUP_TIMEOUT_S = 10.0


def lookup(channel: grpc.aio.Channel) -> EventLookup:
    """`(account_id, event_id) -> bool`: whether the event exists in that account alone
    (never `see_all`: a face is written for its own account)."""
    events = grpc_client.stub(events_pb2_grpc.EventsServiceStub, channel)

    async def exists(account_id: str, event_id: str) -> bool:
        request = events_pb2.GetEventRequest(
            scope=account_pb2.AccountScope(account_id=account_id),
            event_id=event_id,
            targets=["event_id"],
        )
        try:
            await events.GetEvent(request, timeout=LOOKUP_TIMEOUT_S)
        except errors.LunaError as err:
            if err.code == errors.EVENT_NOT_FOUND:
                return False
            raise
        return True

    return exists

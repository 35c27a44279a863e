"""Wiring of PipelineService into the events app (kept here so app.py gets three lines)."""

from __future__ import annotations

from typing import Any

import grpc
from luna.estimator.v1 import estimator_pb2_grpc
from luna.events.v1 import pipeline_pb2, pipeline_pb2_grpc
from luna.faces.v1 import attributes_pb2_grpc, blobs_pb2_grpc, faces_pb2_grpc, lists_pb2_grpc
from luna.matcher.v1 import matcher_pb2_grpc

from services.common import grpc_client
from services.events.events import Events
from services.events.handlers import Handlers
from services.events.pipeline.callbacks import CallbackSender
from services.events.pipeline.generate import Pipeline
from services.events.pipeline.service import PipelineServicer
from services.events.pipeline.shared import Clients
from services.events.pipeline.verify import Verification
from services.events.verifiers import Verifiers

SERVICE = pipeline_pb2  # the module whose PipelineService `register` serves


def start(state: dict[str, Any]) -> dict[str, Any]:
    """Channels to the estimator, matcher and faces services (LUNA_<SVC>_ADDRESS) and the
    cores; called inside the serving loop because grpc.aio channels bind to it."""
    channels = {s: grpc_client.channel(s) for s in ("estimator", "matcher", "faces")}
    stub = grpc_client.stub
    clients = Clients(
        estimator=stub(estimator_pb2_grpc.EstimatorServiceStub, channels["estimator"]),
        matcher=stub(matcher_pb2_grpc.MatcherServiceStub, channels["matcher"]),
        faces=stub(faces_pb2_grpc.FacesServiceStub, channels["faces"]),
        lists=stub(lists_pb2_grpc.ListsServiceStub, channels["faces"]),
        attributes=stub(attributes_pb2_grpc.AttributesServiceStub, channels["faces"]),
        blobs=stub(blobs_pb2_grpc.BlobsServiceStub, channels["faces"]),
    )
    handlers, events, verifiers = state["handlers"], state["events"], state["verifiers"]
    assert isinstance(handlers, Handlers) and isinstance(events, Events)
    assert isinstance(verifiers, Verifiers)
    return {
        "pipeline_channels": channels,
        "callbacks": (callbacks := CallbackSender()),
        "pipeline": Pipeline(clients, handlers, events, callbacks),
        "verification": Verification(clients, verifiers, events),
    }


def register(state: dict[str, Any], server: grpc.aio.Server) -> None:
    pipeline_pb2_grpc.add_PipelineServiceServicer_to_server(
        PipelineServicer(state["pipeline"], state["verification"]), server
    )


async def stop(state: dict[str, Any]) -> None:
    if isinstance(state.get("callbacks"), CallbackSender):
        await state["callbacks"].close()
    for channel in (state.get("pipeline_channels") or {}).values():
        await channel.close()

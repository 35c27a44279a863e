"""PipelineService: the thin gRPC adapter of the generate-events and verification cores."""

from __future__ import annotations

import grpc
from luna.events.v1 import pipeline_pb2, pipeline_pb2_grpc

from services.common import logs
from services.common.grpc_server import unary
from services.common.pbjson import to_struct
from services.events.pipeline.generate import Pipeline
from services.events.pipeline.verify import Verification


class PipelineServicer(pipeline_pb2_grpc.PipelineServiceServicer):
    def __init__(self, pipeline: Pipeline, verification: Verification) -> None:
        self._pipeline = pipeline
        self._verification = verification

    async def GenerateEvents(
        self, request: pipeline_pb2.GenerateEventsRequest, context: grpc.aio.ServicerContext
    ) -> pipeline_pb2.GenerateEventsResponse:
        if not request.request_id:
            # The gateway's Luna-Request-Id arrives as metadata; the Sender shows it.
            request.request_id = logs.request_id.get()
        result, event_ids = await self._pipeline.generate(request)
        return pipeline_pb2.GenerateEventsResponse(result=to_struct(result), event_ids=event_ids)

    Verify = unary(
        lambda s, r: s._verification.verify(r),
        lambda result: pipeline_pb2.VerifyResponse(result=to_struct(result)),
    )
    VerifyRaw = unary(
        lambda s, r: s._verification.verify_raw(r),
        lambda result: pipeline_pb2.VerifyRawResponse(result=to_struct(result)),
    )

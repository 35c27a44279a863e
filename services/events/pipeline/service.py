"""PipelineService: the thin gRPC adapter of the generate-events and verification cores."""

from __future__ import annotations

import grpc
from luna.events.v1 import pipeline_pb2, pipeline_pb2_grpc

from services.common import logs
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

    async def Verify(
        self, request: pipeline_pb2.VerifyRequest, context: grpc.aio.ServicerContext
    ) -> pipeline_pb2.VerifyResponse:
        return pipeline_pb2.VerifyResponse(
            result=to_struct(await self._verification.verify(request))
        )

    async def VerifyRaw(
        self, request: pipeline_pb2.VerifyRawRequest, context: grpc.aio.ServicerContext
    ) -> pipeline_pb2.VerifyRawResponse:
        result = await self._verification.verify_raw(request)
        return pipeline_pb2.VerifyRawResponse(result=to_struct(result))

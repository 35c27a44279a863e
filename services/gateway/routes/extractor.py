"""/6/extractor: descriptors and basic attributes of stored face samples, kept as temporary
attributes (LUNA's "extract attributes")."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from luna.common.v1 import account_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import attributes_pb2, blobs_pb2

from services.common import aggregation, errors, shared_settings
from services.common.descriptors import mean_unit
from services.common.pbjson import from_struct
from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
log = logging.getLogger("luna.gateway")


def _own_scope(ctx: Ctx) -> account_pb2.AccountScope:
    # Samples are read for a write (the attributes belong to the caller): never another
    # account's, whatever the caller may read.
    return account_pb2.AccountScope(account_id=ctx.account_id)


async def _samples(ctx: Ctx, sample_ids: list[str]) -> list[epb.Sample]:
    """The stored samples, in order; a missing one (or another account's) is LUNA's 13003."""
    replies = await asyncio.gather(
        *(
            ctx.clients.blobs.GetBlob(
                blobs_pb2.GetBlobRequest(
                    scope=_own_scope(ctx), kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE, blob_id=sid
                )
            )
            for sid in sample_ids
        )
    )
    return [epb.Sample(data=r.blob.data, content_type=r.blob.content_type) for r in replies]


async def _create(
    ctx: Ctx, data: attributes_pb2.AttributeData, ttl: int, created: list[str]
) -> str:
    reply = await ctx.clients.attributes.CreateAttribute(
        attributes_pb2.CreateAttributeRequest(scope=_own_scope(ctx), data=data, ttl_seconds=ttl)
    )
    created.append(reply.attribute.attribute_id)
    return reply.attribute.attribute_id


async def _undo(ctx: Ctx, created: list[str]) -> None:
    for aid in created:
        try:
            await ctx.clients.attributes.DeleteAttribute(
                attributes_pb2.DeleteAttributeRequest(scope=_own_scope(ctx), attribute_id=aid)
            )
        except Exception:  # the TTL removes it anyway; the original error is what matters
            log.warning("could not remove attribute %s after a failed extraction", aid)


def _attribute(
    sample_ids: list[str], results: list[epb.SampleEstimations], want_basic: bool
) -> tuple[attributes_pb2.AttributeData, dict[str, Any]]:
    """The attribute of one group of samples (aggregated when there are several) and what the
    response shows of it besides ids."""
    data = attributes_pb2.AttributeData()
    shown: dict[str, Any] = {}
    descriptors = [r.descriptor for r in results if r.HasField("descriptor")]
    if descriptors:
        data.descriptors.append(
            attributes_pb2.Descriptor(
                descriptor=mean_unit([d.data for d in descriptors]),
                version=descriptors[0].version,
            )
        )
        data.descriptor_samples.extend(sample_ids)
    if want_basic:
        basic = aggregation.mean_basic_attributes(
            [from_struct(r.estimations)["basic_attributes"] for r in results]
        )
        # No ethnicity model here: ethnicity stays unset (0) rather than made up.
        data.basic_attributes.CopyFrom(
            attributes_pb2.BasicAttributes(age=basic["age"], gender=basic["gender"])
        )
        data.basic_attributes_samples.extend(sample_ids)
        shown["basic_attributes"] = {**basic, "ethnicity": None}
    return data, shown


@table.route(
    "POST",
    "/6/extractor",
    auth=AuthRule(resource="attribute", action="creation"),
    op="extractAttributes",
    json_body=True,
)
async def extract(ctx: Ctx) -> web.Response:
    q = ctx.query
    want_descriptor = bool(q.get("extract_descriptor", 1))
    want_basic = bool(q.get("extract_basic_attributes", 0))
    if not (want_descriptor or want_basic):
        raise errors.LunaError(
            errors.BAD_INPUT,
            "Not selected attributes for extract: extract_descriptor and "
            "extract_basic_attributes are both 0",
        )
    if float(q.get("score_threshold", 0) or 0) > 0:
        raise errors.LunaError(
            errors.NOT_IMPLEMENTED,
            "score_threshold is not implemented: no descriptor quality score",
        )
    sample_ids: list[str] = list(ctx.body)
    ttl = int(q.get("ttl", 300))
    samples = await _samples(ctx, sample_ids)
    wanted = (["face_descriptor"] if want_descriptor else []) + (
        ["basic_attributes"] if want_basic else []
    )
    reply = await ctx.clients.estimator.Estimate(
        epb.EstimateRequest(
            samples=samples,
            estimations=wanted,
            descriptor_version=int(
                q.get("descriptor_version") or shared_settings.DEFAULT_DESCRIPTOR_VERSION.get_int()
            ),
        ),
        timeout=120,
    )
    per_sample = list(reply.results)
    # One attribute per sample, or one for all of them (aggregate_attributes=1).
    groups = (
        [list(range(len(sample_ids)))]
        if q.get("aggregate_attributes")
        else [[i] for i in range(len(sample_ids))]
    )
    created: list[str] = []
    out = []
    try:
        for group in groups:
            ids_ = [sample_ids[i] for i in group]
            data, shown = _attribute(ids_, [per_sample[i] for i in group], want_basic)
            aid = await _create(ctx, data, ttl, created)
            out.append(
                {
                    "attribute_id": aid,
                    "url": f"/6/attributes/{aid}",
                    **shown,
                    "samples": ids_,
                    # LUNA's descriptor quality score needs a model we do not have.
                    "score": None,
                }
            )
    except BaseException:
        await _undo(ctx, created)
        raise
    return json_response(out, status=201)

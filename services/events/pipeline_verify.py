"""Verification with a verifier: references (images, warps, descriptors) against candidate
faces, events, attributes and external ids. A candidate passes when its similarity is
strictly greater than the verifier's `verification_threshold` (LUNA's rule).

Everything is read and compared before the verifier's storage policy writes anything
(samples, then a temporary attribute); if the attribute write fails the samples are deleted.
"""

from __future__ import annotations

from typing import Any

from luna.common.v1 import account_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb
from luna.faces.v1 import attributes_pb2, blobs_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import errors
from services.common.scoping import Scope
from services.events import pipeline_render as render
from services.events.events import FACE, Events
from services.events.pipeline import MULTIFACE, Clients, Undo, _deleter
from services.events.pipeline_filters import detect_needs, detect_reasons
from services.events.verifiers import Verifiers

MAX_CANDIDATES = 1000
BAD_DESCRIPTOR_LENGTH = 12034


def _raw(key: str, descriptor: bytes, version: int) -> mpb.RawEntity:
    return mpb.RawEntity(
        id=key, descriptor=mpb.RawDescriptor(descriptor=descriptor, version=version)
    )


class Verification:
    def __init__(self, clients: Clients, verifiers: Verifiers, events: Events) -> None:
        self._c = clients
        self._verifiers = verifiers
        self._events = events

    async def _threshold_and_policies(
        self, scope: account_pb2.AccountScope, verifier_id: str
    ) -> tuple[float, dict[str, Any]]:
        v = await self._verifiers.get(Scope(scope.account_id), verifier_id)
        policies = v.policies
        return float(policies.get("verification_threshold", 0.9)), policies

    async def _candidate_descriptors(
        self, req: ppb.VerifyRequest, version: int
    ) -> tuple[list[mpb.RawEntity], dict[str, dict[str, Any]]]:
        """Candidate descriptors (id -> LUNA object) of attributes and events; read here
        because MatchRaw compares values, not ids."""
        scope = req.scope
        entities: list[mpb.RawEntity] = []
        objects: dict[str, dict[str, Any]] = {}
        for aid in req.attribute_ids:
            attr = (
                await self._c.attributes.GetAttribute(
                    attributes_pb2.GetAttributeRequest(
                        scope=scope, attribute_id=aid, descriptor_version=version
                    )
                )
            ).attribute
            for d in attr.data.descriptors:
                if d.version == version:
                    entities.append(_raw(f"a:{aid}", d.descriptor, d.version))
                    objects[f"a:{aid}"] = {"attribute": {"attribute_id": aid}}
        if req.event_ids:
            rows = await self._events.descriptors(
                Scope(scope.account_id), kind=FACE, version=version, event_ids=list(req.event_ids)
            )
            have = {eid for eid, _, _ in rows}
            missing = [e for e in req.event_ids if e not in have]
            if missing:
                raise errors.LunaError(23001, f"Event with id {missing[0]} not found")
            for eid, d, v in rows:
                entities.append(_raw(f"e:{eid}", d, v))
                objects[f"e:{eid}"] = {"event": {"event_id": eid}}
        return entities, objects

    async def _compare(
        self, req: ppb.VerifyRequest, refs: list[tuple[str, bytes, int]]
    ) -> dict[str, list[tuple[dict[str, Any], float]]]:
        """reference key -> [(candidate object, similarity)]."""
        out: dict[str, list[tuple[dict[str, Any], float]]] = {key: [] for key, _, _ in refs}
        if not refs:
            return out
        if req.face_ids or req.external_ids:
            cands = mpb.FaceCandidates(
                face_ids=req.face_ids,
                external_ids=req.external_ids,
                limit=MAX_CANDIDATES,
                threshold=0.0,
            )
            reply = await self._c.matcher.MatchFaces(
                mpb.MatchFacesRequest(
                    scope=account_pb2.AccountScope(account_id=req.scope.account_id),
                    references=[
                        mpb.Reference(id=k, descriptor=mpb.RawDescriptor(descriptor=d, version=v))
                        for k, d, v in refs
                    ],
                    candidates=[cands],
                )
            )
            for result in reply.results:
                for m in result.candidates[0].matches if result.candidates else []:
                    out[result.reference.id].append(
                        ({"face": {"face_id": m.face.face_id}}, m.similarity)
                    )
            found = {obj["face"]["face_id"] for lst in out.values() for obj, _ in lst}
            missing = [f for f in req.face_ids if f not in found]
            if missing:
                raise errors.LunaError(22002, f"Face with id '{missing[0]}' not found")
        entities, objects = await self._candidate_descriptors(req, refs[0][2])
        if entities:
            reply = await self._c.matcher.MatchRaw(
                mpb.MatchRawRequest(
                    references=[_raw(k, d, v) for k, d, v in refs], candidates=entities
                )
            )
            for result in reply.results:
                for m in result.matches:
                    out[result.reference_id].append((objects[m.candidate_id], m.similarity))
        return out

    async def verify(self, req: ppb.VerifyRequest) -> dict[str, Any]:
        threshold, policies = await self._threshold_and_policies(req.scope, req.verifier_id)
        if not req.references:
            raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
        if not (req.face_ids or req.event_ids or req.attribute_ids or req.external_ids):
            raise errors.LunaError(
                errors.NO_ONE_QUERY_PARAM,
                "No one parameters '[face_ids, event_ids, attribute_ids, external_ids]' not found",
            )
        dp = policies["detect_policy"]
        images = [(i, r.image) for i, r in enumerate(req.references) if r.HasField("image")]
        run = {"face_descriptor"} | detect_needs(dp)
        if policies["extract_policy"].get("extract_basic_attributes"):
            run.add("basic_attributes")
        detections: dict[int, epb.ImageDetections] = {}
        if images:
            reply = await self._c.estimator.Detect(
                epb.DetectRequest(
                    images=[img for _, img in images],
                    image_type=req.image_type,
                    multiface_policy=MULTIFACE[dp["multiface_policy"]],
                    detect_face=True,
                    estimations=sorted(run),
                    ignore_exif=req.ignore_exif,
                )
            )
            for (i, _), result in zip(images, reply.results, strict=True):
                if result.WhichOneof("outcome") == "error":
                    raise errors.LunaError(result.error.error_code, result.error.detail)
                detections[i] = result.detections
        refs: list[tuple[str, bytes, int]] = []
        faces: dict[str, tuple[epb.Face, dict[str, Any]]] = {}
        filtered: dict[str, list[str]] = {}
        for i, ref in enumerate(req.references):
            if ref.HasField("descriptor"):
                d = ref.descriptor
                if not d.descriptor or len(d.descriptor) % 4:
                    raise errors.LunaError(
                        BAD_DESCRIPTOR_LENGTH,
                        f"Descriptor has incorrect length {len(d.descriptor)}",
                    )
                refs.append((f"{i}", d.descriptor, d.version))
                continue
            for j, face in enumerate(detections[i].faces):
                est = render.estimations(face)
                key = f"{i}.{j}"
                reasons = detect_reasons(dp, est)
                faces[key] = (face, est)
                if reasons:
                    filtered[key] = reasons
                elif face.HasField("descriptor"):
                    refs.append((key, face.descriptor.data, face.descriptor.version))
        compared = await self._compare(req, refs)
        stored = await self._store(req.scope, policies, faces, filtered, refs)
        images_out = []
        for i, ref in enumerate(req.references):
            entries = []
            keys = (
                [f"{i}"]
                if ref.HasField("descriptor")
                else [k for k in faces if k.split(".")[0] == f"{i}"]
            )
            for key in keys:
                item: dict[str, Any] = {}
                if key in faces:
                    face, est = faces[key]
                    item["detection"] = render.detection(face, est)
                    if "basic_attributes" in est:
                        item["basic_attributes"] = est["basic_attributes"]
                item.update(stored.get(key, {}))
                if key in filtered:
                    item["filter_reasons"] = filtered[key]
                    entries.append(item)
                    continue
                item["verifications"] = [
                    {**obj, "similarity": round(sim, 6), "status": sim > threshold}
                    for obj, sim in sorted(compared.get(key, []), key=lambda x: -x[1])
                ]
                entries.append(item)
            verified = [e for e in entries if "verifications" in e]
            overall = bool(verified) and all(
                e["verifications"] and all(v["status"] for v in e["verifications"])
                for e in verified
            )
            images_out.append(
                {
                    "filename": ref.image.filename if ref.HasField("image") else f"descriptor_{i}",
                    "status": 1,
                    "error": render.SUCCESS,
                    "detections": {"face_detections": entries, "overall_status": overall},
                }
            )
        return {"images": images_out}

    async def _store(
        self,
        scope: account_pb2.AccountScope,
        policies: dict[str, Any],
        faces: dict[str, tuple[epb.Face, dict[str, Any]]],
        filtered: dict[str, list[str]],
        refs: list[tuple[str, bytes, int]],
    ) -> dict[str, dict[str, Any]]:
        sp = policies["storage_policy"]
        out: dict[str, dict[str, Any]] = {}
        keep = [k for k in faces if k not in filtered]
        undo = Undo()
        try:
            samples: dict[str, str] = {}
            if sp["face_sample_policy"].get("store_sample") and keep:
                reply = await self._c.blobs.PutBlobs(
                    blobs_pb2.PutBlobsRequest(
                        scope=scope,
                        blobs=[
                            blobs_pb2.BlobInput(
                                kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE,
                                content_type=faces[k][0].sample_content_type or "image/png",
                                data=faces[k][0].sample,
                            )
                            for k in keep
                        ],
                    )
                )
                for k, sid in zip(keep, reply.blob_ids, strict=True):
                    samples[k] = sid
                    undo.add(
                        "sample",
                        _deleter(self._c.blobs, scope, blobs_pb2.BLOB_KIND_FACE_SAMPLE, sid),
                    )
                    out[k] = {"sample_id": sid, "url": f"/6/samples/faces/{sid}"}
            if sp["attribute_policy"].get("store_attribute"):
                by_key = {k: (d, v) for k, d, v in refs}
                for k in keep:
                    if k not in by_key:
                        continue
                    d, v = by_key[k]
                    data = attributes_pb2.AttributeData(
                        descriptors=[attributes_pb2.Descriptor(descriptor=d, version=v)],
                        descriptor_samples=[samples[k]] if k in samples else [],
                    )
                    reply = await self._c.attributes.CreateAttribute(
                        attributes_pb2.CreateAttributeRequest(scope=scope, data=data)
                    )
                    out.setdefault(k, {})["attribute_id"] = reply.attribute.attribute_id
        except BaseException:
            await undo.run()
            raise
        return out

    async def verify_raw(self, req: ppb.VerifyRawRequest) -> dict[str, Any]:
        threshold, _ = await self._threshold_and_policies(req.scope, req.verifier_id)
        if not req.references or not req.candidates:
            raise errors.LunaError(
                errors.BAD_JSON,
                "Failed to validate input json. Path: 'references', message: "
                "'non-empty array required'",
            )
        for e in [*req.references, *req.candidates]:
            if not e.descriptor.descriptor or len(e.descriptor.descriptor) % 4:
                raise errors.LunaError(
                    BAD_DESCRIPTOR_LENGTH,
                    f"Descriptor has incorrect length {len(e.descriptor.descriptor)}",
                )
        reply = await self._c.matcher.MatchRaw(
            mpb.MatchRawRequest(
                references=[
                    _raw(f"{i}", r.descriptor.descriptor, r.descriptor.version)
                    for i, r in enumerate(req.references)
                ],
                candidates=[
                    _raw(f"{i}", c.descriptor.descriptor, c.descriptor.version)
                    for i, c in enumerate(req.candidates)
                ],
            )
        )
        matches = []
        for result in reply.results:
            ref = req.references[int(result.reference_id)]
            matches.append(
                {
                    "reference_id": ref.id,
                    "matches": [
                        {
                            "candidate_id": req.candidates[int(m.candidate_id)].id,
                            "similarity": round(m.similarity, 6),
                            "status": m.similarity > threshold,
                        }
                        for m in sorted(result.matches, key=lambda m: -m.similarity)
                    ],
                }
            )
        return {"matches": matches}

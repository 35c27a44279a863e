"""Verification with a verifier: references (images, warps, descriptors) against candidate
faces, events, attributes and external ids. A candidate passes when its similarity is
strictly greater than the verifier's `verification_threshold` (LUNA's rule).

Everything is read and compared before the verifier's storage policy writes anything
(samples, then a temporary attribute); if the attribute write fails the samples are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from luna.common.v1 import account_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb
from luna.faces.v1 import attributes_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import errors, luna_json
from services.common.scoping import Scope
from services.events.events import FACE, Events
from services.events.events import not_found as events_not_found
from services.events.pipeline import render
from services.events.pipeline.filters import detect_needs, detect_reasons
from services.events.pipeline.match import raw_descriptor, raw_entity
from services.events.pipeline.shared import (
    MULTIFACE,
    Clients,
    Undo,
    Writes,
    check_descriptor,
    detect,
)
from services.events.pipeline.store import put_samples
from services.events.verifiers import Verifiers

MAX_CANDIDATES = 1000
# (reference key, descriptor, version); the key is "<reference>" for a descriptor reference,
# "<reference>.<face>" for a detected face.
Ref = tuple[str, bytes, int]
# reference key -> [(candidate object, similarity)]
Compared = dict[str, list[tuple[dict[str, Any], float]]]


@dataclass
class References:
    """What a request's references became: descriptors to compare, the faces detected by
    key, and why detect_policy filtered a face out."""

    refs: list[Ref] = field(default_factory=list)
    faces: dict[str, tuple[epb.Face, dict[str, Any]]] = field(default_factory=dict)
    filtered: dict[str, list[str]] = field(default_factory=dict)

    def keys(self, index: int, ref: ppb.VerifyReference) -> list[str]:
        if ref.HasField("descriptor"):
            return [f"{index}"]
        return [k for k in self.faces if k.split(".")[0] == f"{index}"]


@dataclass
class Verdicts:
    """Everything a verification answer shows."""

    found: References
    compared: Compared
    stored: dict[str, dict[str, Any]]
    threshold: float


def references(
    req: ppb.VerifyRequest, detect_policy: dict[str, Any], detections: dict[int, Any]
) -> References:
    out = References()
    for i, ref in enumerate(req.references):
        if ref.HasField("descriptor"):
            d = ref.descriptor
            check_descriptor(d.descriptor)
            out.refs.append((f"{i}", d.descriptor, d.version))
            continue
        for j, face in enumerate(detections[i].faces):
            est = luna_json.estimations(face)
            key = f"{i}.{j}"
            reasons = detect_reasons(detect_policy, est)
            out.faces[key] = (face, est)
            if reasons:
                out.filtered[key] = reasons
            elif face.HasField("descriptor"):
                out.refs.append((key, face.descriptor.data, face.descriptor.version))
    return out


def entry_json(key: str, v: Verdicts) -> dict[str, Any]:
    """One reference face (or descriptor) with its verifications."""
    item: dict[str, Any] = {}
    if key in v.found.faces:
        face, est = v.found.faces[key]
        item["detection"] = render.detection(face, est)
        if "basic_attributes" in est:
            item["basic_attributes"] = est["basic_attributes"]
    item.update(v.stored.get(key, {}))
    if key in v.found.filtered:
        item["filter_reasons"] = v.found.filtered[key]
        return item
    item["verifications"] = [
        {**obj, "similarity": round(sim, 6), "status": sim > v.threshold}
        for obj, sim in sorted(v.compared.get(key, []), key=lambda x: -x[1])
    ]
    return item


def image_json(index: int, ref: ppb.VerifyReference, v: Verdicts) -> dict[str, Any]:
    """One reference of the request as LUNA's verification answer shows it."""
    entries = [entry_json(key, v) for key in v.found.keys(index, ref)]
    verified = [e for e in entries if "verifications" in e]
    overall = bool(verified) and all(
        e["verifications"] and all(x["status"] for x in e["verifications"]) for e in verified
    )
    return {
        "filename": ref.image.filename if ref.HasField("image") else f"descriptor_{index}",
        "status": 1,
        "error": render.SUCCESS,
        "detections": {"face_detections": entries, "overall_status": overall},
    }


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

    async def _attribute_candidates(
        self, req: ppb.VerifyRequest, version: int
    ) -> list[tuple[mpb.RawEntity, dict[str, Any]]]:
        out = []
        for aid in req.attribute_ids:
            attr = (
                await self._c.attributes.GetAttribute(
                    attributes_pb2.GetAttributeRequest(
                        scope=req.scope, attribute_id=aid, descriptor_version=version
                    )
                )
            ).attribute
            for d in attr.data.descriptors:
                if d.version == version:
                    out.append(
                        (
                            raw_entity(f"a:{aid}", d.descriptor, d.version),
                            {"attribute": {"attribute_id": aid}},
                        )
                    )
        return out

    async def _event_candidates(
        self, req: ppb.VerifyRequest, version: int
    ) -> list[tuple[mpb.RawEntity, dict[str, Any]]]:
        if not req.event_ids:
            return []
        rows = await self._events.descriptors(
            Scope(req.scope.account_id), kind=FACE, version=version, event_ids=list(req.event_ids)
        )
        have = {eid for eid, _, _ in rows}
        missing = [e for e in req.event_ids if e not in have]
        if missing:
            raise events_not_found(missing[0])
        return [(raw_entity(f"e:{eid}", d, v), {"event": {"event_id": eid}}) for eid, d, v in rows]

    async def _compare_faces(self, req: ppb.VerifyRequest, refs: list[Ref], out: Compared) -> None:
        """Face and external-id candidates, through MatchFaces."""
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
                    mpb.Reference(id=k, descriptor=raw_descriptor(d, v)) for k, d, v in refs
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
            raise errors.LunaError(errors.FACE_NOT_FOUND, f"Face with id '{missing[0]}' not found")

    async def _compare(self, req: ppb.VerifyRequest, refs: list[Ref]) -> Compared:
        """reference key -> [(candidate object, similarity)]."""
        out: Compared = {key: [] for key, _, _ in refs}
        if not refs:
            return out
        if req.face_ids or req.external_ids:
            await self._compare_faces(req, refs, out)
        # Attribute and event descriptors are read here: MatchRaw compares values, not ids.
        version = refs[0][2]
        candidates = await self._attribute_candidates(req, version)
        candidates += await self._event_candidates(req, version)
        if candidates:
            objects = {entity.id: obj for entity, obj in candidates}
            reply = await self._c.matcher.MatchRaw(
                mpb.MatchRawRequest(
                    references=[raw_entity(k, d, v) for k, d, v in refs],
                    candidates=[entity for entity, _ in candidates],
                )
            )
            for result in reply.results:
                for m in result.matches:
                    out[result.reference_id].append((objects[m.candidate_id], m.similarity))
        return out

    async def _detect(
        self, req: ppb.VerifyRequest, policies: dict[str, Any]
    ) -> dict[int, epb.ImageDetections]:
        images = [(i, r.image) for i, r in enumerate(req.references) if r.HasField("image")]
        if not images:
            return {}
        dp = policies["detect_policy"]
        run = {"face_descriptor"} | detect_needs(dp)
        if policies["extract_policy"].get("extract_basic_attributes"):
            run.add("basic_attributes")
        return await detect(
            self._c.estimator,
            images,
            image_type=req.image_type,
            multiface_policy=MULTIFACE[dp["multiface_policy"]],
            detect_face=True,
            estimations=sorted(run),
            ignore_exif=req.ignore_exif,
        )

    async def verify(self, req: ppb.VerifyRequest) -> dict[str, Any]:
        threshold, policies = await self._threshold_and_policies(req.scope, req.verifier_id)
        if not req.references:
            raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
        if not (req.face_ids or req.event_ids or req.attribute_ids or req.external_ids):
            raise errors.LunaError(
                errors.NO_ONE_QUERY_PARAM,
                "No one parameters '[face_ids, event_ids, attribute_ids, external_ids]' not found",
            )
        detections = await self._detect(req, policies)
        found = references(req, policies["detect_policy"], detections)
        compared = await self._compare(req, found.refs)
        stored = await self._store(req.scope, policies["storage_policy"], found)
        verdicts = Verdicts(found, compared, stored, threshold)
        return {"images": [image_json(i, r, verdicts) for i, r in enumerate(req.references)]}

    async def _store(
        self, scope: account_pb2.AccountScope, sp: dict[str, Any], found: References
    ) -> dict[str, dict[str, Any]]:
        """The verifier's storage policy: samples, then temporary attributes; the samples are
        deleted if an attribute write fails."""
        out: dict[str, dict[str, Any]] = {}
        keep = [k for k in found.faces if k not in found.filtered]
        writes = Writes(self._c, scope, Undo())
        try:
            samples: dict[str, str] = {}
            if sp["face_sample_policy"].get("store_sample") and keep:
                blob_ids = await put_samples(writes, [found.faces[k][0] for k in keep])
                for k, sid in zip(keep, blob_ids, strict=True):
                    samples[k] = sid
                    out[k] = {"sample_id": sid, "url": f"/6/samples/faces/{sid}"}
            if sp["attribute_policy"].get("store_attribute"):
                await self._store_attributes(scope, found, samples, out)
        except BaseException:
            await writes.undo.run()
            raise
        return out

    async def _store_attributes(
        self,
        scope: account_pb2.AccountScope,
        found: References,
        samples: dict[str, str],
        out: dict[str, dict[str, Any]],
    ) -> None:
        by_key = {k: (d, v) for k, d, v in found.refs}
        for k in found.faces:
            if k in found.filtered or k not in by_key:
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

    async def verify_raw(self, req: ppb.VerifyRawRequest) -> dict[str, Any]:
        threshold, _ = await self._threshold_and_policies(req.scope, req.verifier_id)
        if not req.references or not req.candidates:
            raise errors.bad_json("references", "non-empty array required")
        for e in [*req.references, *req.candidates]:
            check_descriptor(e.descriptor.descriptor)
        reply = await self._c.matcher.MatchRaw(
            mpb.MatchRawRequest(
                references=[
                    raw_entity(f"{i}", r.descriptor.descriptor, r.descriptor.version)
                    for i, r in enumerate(req.references)
                ],
                candidates=[
                    raw_entity(f"{i}", c.descriptor.descriptor, c.descriptor.version)
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

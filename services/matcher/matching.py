"""MatchFaces / MatchRaw: resolve references and candidate sets, search, attach face records.

References resolve locally first (a face the index holds gives its descriptor without a
network hop) and through the faces service otherwise, which also raises LUNA's not-found
errors. Candidate filters the index knows (list, face ids, account) are searched in the
index; filters only PostgreSQL knows (user_data, external_ids, create_time, ...) are turned
into a face id set through FacesService.ListFaces first. Matched faces' records are the
matcher's own (services/matcher/face_records.py), kept current by FACES_CHANGES.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from google.protobuf import json_format
from luna.common.v1 import account_pb2, paging_pb2
from luna.events.v1 import events_pb2
from luna.faces.v1 import attributes_pb2, faces_pb2
from luna.matcher.v1 import matcher_pb2

from services.common import errors, ids, pbjson
from services.matcher.core import (
    AccountCandidates,
    Candidates,
    FaceIdCandidates,
    IndexSet,
    ListCandidates,
    cosine_to_similarity,
)
from services.matcher.core.descriptors import check_version, dim_of, unpack_unit
from services.matcher.sync import Sync

MAX_REFERENCES = 30
MAX_CANDIDATE_SETS = 30
MAX_IDS = 1000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 3
PAGE = 1000
# Candidate filters the faces service applies, named alike in FaceCandidates and FaceFilter.
_FILTER_FIELDS = (
    "face_ids",
    "external_ids",
    "list_id",
    "event_id",
    "face_id_gte",
    "face_id_lt",
    "user_data",
    "create_time_gte",
    "create_time_lt",
)
# Searches of at most this many references run on the event loop: a batch of 10 probes of a
# watchlist searches in less time than the thread hop (bench.matcher.small grpc_batch10).
INLINE_REFS = 10


@dataclass
class Resolved:
    reference: matcher_pb2.Reference
    face_id: str
    vector: np.ndarray  # (dim,) unit float32
    index: int = 0  # position of the reference in the request
    event_id: str = ""


def _bad(detail: str) -> errors.LunaError:
    return errors.LunaError(errors.BAD_INPUT, detail)


def search_account(scope: account_pb2.AccountScope) -> str | None:
    """Whose faces a search may touch; None = every account (see_all without a filter)."""
    if scope.see_all:
        return scope.filter_account_id or None
    return scope.account_id


def local_descriptor(ix: IndexSet, face_id: str, account_id: str | None) -> np.ndarray | None:
    """The descriptor the index holds for a visible face.

    Uses the core's private face table: IndexSet has no public "descriptor of face" call and
    the core is owned by a colleague; this is the one place that reaches inside.
    """
    entry = ix._faces.get(face_id)
    if entry is None or (account_id is not None and entry.account_id != account_id):
        return None
    return ix._vector_of(entry)


def unit_vector(raw: bytes, version: int, want_version: int) -> np.ndarray:
    """A request's raw descriptor, validated: 31001 other version, 12034 length, 26302 NaN/0."""
    check_version(version or want_version, want_version)
    return unpack_unit(raw, dim_of(want_version))


def _has_db_filters(c: matcher_pb2.FaceCandidates) -> bool:
    return bool(
        c.external_ids
        or c.HasField("user_data")
        or c.event_id
        or c.HasField("create_time_gte")
        or c.HasField("create_time_lt")
        or c.face_id_gte
        or c.face_id_lt
    )


def _check_ids(values: Sequence[str], path: str) -> None:
    if len(values) > MAX_IDS:
        raise _bad(f"{path}: at most {MAX_IDS} ids")
    for v in values:
        if not ids.is_uuid(v):
            raise _bad(f"{path}: '{v}' is not a valid uuid")


def validate(req: matcher_pb2.MatchFacesRequest) -> None:
    if not 1 <= len(req.references) <= MAX_REFERENCES:
        raise _bad(f"references: 1..{MAX_REFERENCES} items required")
    if len(req.candidates) + len(req.event_candidates) > MAX_CANDIDATE_SETS:
        raise _bad(f"candidates: at most {MAX_CANDIDATE_SETS} items")
    for i, e in enumerate(req.event_candidates):
        if not 0 <= e.limit <= MAX_LIMIT:
            raise _bad(f"candidates.{i}.limit: must be within 1..{MAX_LIMIT}")
        if not 0.0 <= e.threshold <= 1.0:
            raise _bad(f"candidates.{i}.threshold: must be within 0..1")
    for i, c in enumerate(req.candidates):
        if not 0 <= c.limit <= MAX_LIMIT:
            raise _bad(f"candidates.{i}.limit: must be within 1..{MAX_LIMIT}")
        if not 0.0 <= c.threshold <= 1.0:
            raise _bad(f"candidates.{i}.threshold: must be within 0..1")
        _check_ids(c.face_ids, f"candidates.{i}.face_ids")
        if c.list_id:
            _check_ids([c.list_id], f"candidates.{i}.list_id")
    for i, r in enumerate(req.references):
        which = r.WhichOneof("source")
        if which is None:
            raise _bad(f"references.{i}: no source")
        if which in ("face_id", "attribute_id", "event_id"):
            _check_ids([getattr(r, which)], f"references.{i}.{which}")


class Matching:
    def __init__(
        self,
        sync: Sync,
        faces: Any,  # LunaStub of FacesService
        attributes: Any,  # LunaStub of AttributesService
        events: Any,  # LunaStub of EventsService (event references and candidates)
        *,
        consistency_wait: float,
        filter_max_faces: int,
    ) -> None:
        self.sync = sync
        self.faces = faces
        self.attributes = attributes
        self.events = events
        self.consistency_wait = consistency_wait
        self.filter_max_faces = filter_max_faces

    @property
    def version(self) -> int:
        return self.sync.version

    # --- MatchFaces ------------------------------------------------------------------------
    async def match_faces(
        self, req: matcher_pb2.MatchFacesRequest
    ) -> matcher_pb2.MatchFacesResponse:
        """Read-your-writes without paying its round trip on top of the search: the stream's
        last sequence is asked for first, the match runs while the answer travels, and it
        counts only if the follower had already applied that sequence when the match began;
        otherwise (a change still on its way) it waits for the follower and matches again."""
        validate(req)
        wait = self.consistency_wait
        if req.HasField("min_applied_seq"):
            return await self._match_at(req, req.min_applied_seq, wait)
        position = self.sync.read_position(wait) if wait > 0 else None
        if position is None:
            return await self._match(req)
        try:
            # The position's request is already written (position.PositionReads): the
            # search overlaps its round trip without yielding to the event loop first.
            seen = self.sync.applied_seq
            out = await self._match(req)
            target = await position
        except BaseException:
            # The match failed: nobody reads the position (nor an error it may have had).
            if not position.cancel() and not position.cancelled():
                position.exception()
            raise
        if target is not None and seen < target:
            await self.sync.wait_for(target, wait)
            out = await self._match(req)
        out.stream_position = target or 0  # a router holds the other shards to it
        return out

    async def _match_at(
        self, req: matcher_pb2.MatchFacesRequest, target: int, wait: float
    ) -> matcher_pb2.MatchFacesResponse:
        """The matcher proxy read the stream's position for every shard: wait for `target`
        (0: no wait), match, and report what was applied when the match began, so the proxy
        asks again when that is below the position it read meanwhile."""
        if target and wait > 0:
            await self.sync.wait_for(target, wait)
        seen = self.sync.applied_seq
        out = await self._match(req)
        out.applied_seq = seen
        return out

    async def _match(self, req: matcher_pb2.MatchFacesRequest) -> matcher_pb2.MatchFacesResponse:
        ix = self.sync.ix
        scope = req.scope
        refs = await self._resolve_all(ix, scope, req.references)
        queries = np.stack([r.vector for r in refs])
        account = search_account(scope)
        per_set: list[list[list[Any]]] = []  # [candidate set][reference] -> matches
        for c in req.candidates:
            cands = await self._candidates(ix, scope, c)
            if cands is None:
                per_set.append([[] for _ in refs])
                continue
            search = partial(
                ix.search,
                account,
                queries,
                cands,
                c.limit or DEFAULT_LIMIT,
                c.threshold,
                self.version,
                unit=True,  # each reference's vector is unit_vector's (or the index's own)
            )
            if len(refs) <= INLINE_REFS and not isinstance(cands, AccountCandidates):
                # A list or a face id set is an HNSW graph or an exact scan of at most the
                # index threshold: well under a millisecond, less than the thread hop itself
                # (handing work to a thread and back was a quarter of a watchlist match).
                found = search()
            else:
                found = await asyncio.to_thread(search)
            per_set.append(found)
        event_sets = [await self._match_events(scope, e, queries) for e in req.event_candidates]
        records = await self._face_records(
            scope, {m.face_id for rows in per_set for row in rows for m in row}
        )
        out = matcher_pb2.MatchFacesResponse()
        for j, ref in enumerate(refs):
            res = out.results.add(
                reference=ref.reference,
                face_id=ref.face_id,
                event_id=ref.event_id,
                reference_index=ref.index,
            )
            for event_rows in event_sets:
                res.event_candidates.append(event_rows[j])
            for rows in per_set:
                cr = res.candidates.add()
                matches = cr.matches
                for m in rows[j]:
                    raw = records.get(m.face_id)
                    if raw is not None:
                        matches.add(similarity=m.similarity).face.MergeFromString(raw)
                cr.total_found = len(matches)
        return out

    async def _resolve_all(
        self, ix: IndexSet, scope: account_pb2.AccountScope, refs: Sequence[matcher_pb2.Reference]
    ) -> list[Resolved]:
        account = search_account(scope)
        # What the matcher holds resolves here, without a coroutine or task per reference
        # (a batch of cached probes spent more on those than on its search).
        parts: list[list[Resolved] | None] = [self._held(ix, account, r) for r in refs]
        away = [i for i, part in enumerate(parts) if part is None]
        if away:
            # Several attribute references (a batch of probes): one GetAttributes for all of
            # them instead of a call each. Any not found this way goes through GetAttribute
            # in _resolve, which raises the documented error.
            attr_ids = [
                refs[i].attribute_id for i in away if refs[i].WhichOneof("source") == "attribute_id"
            ]
            known: dict[str, tuple[attributes_pb2.Attribute, int]] = {}
            if len(attr_ids) > 1:
                deletes = self.sync.attributes.deletes  # what a read may be kept against
                reply = await self.attributes.GetAttributes(
                    attributes_pb2.GetAttributesRequest(
                        scope=scope,
                        attribute_ids=list(dict.fromkeys(attr_ids)),
                        descriptor_version=self.version,
                    )
                )
                known = {
                    a.attribute_id: (a, deletes) for a in reply.attributes if a.data.descriptors
                }
            if len(away) == 1:  # no task for a lone reference
                parts[away[0]] = await self._resolve(ix, scope, refs[away[0]], known)
            else:
                got = await asyncio.gather(
                    *(self._resolve(ix, scope, refs[i], known) for i in away)
                )
                for i, part in zip(away, got, strict=True):
                    parts[i] = part
        out = []
        for i, part in enumerate(parts):
            assert part is not None
            for r in part:
                r.index = i
                out.append(r)
        return out

    def _held(
        self, ix: IndexSet, account: str | None, ref: matcher_pb2.Reference
    ) -> list[Resolved] | None:
        """A reference resolved from what the matcher holds (a raw descriptor, an indexed
        face, a cached attribute); None when it needs its owner (`_resolve`)."""
        which = ref.WhichOneof("source")
        if which == "descriptor":
            vec = unit_vector(ref.descriptor.descriptor, ref.descriptor.version, self.version)
            return [Resolved(ref, "", vec)]
        if which == "attribute_id":
            held = self.sync.attributes.get(ref.attribute_id, account)
            return None if held is None else [Resolved(ref, "", held)]
        if which == "face_id":
            held = local_descriptor(ix, ref.face_id, account)
            return None if held is None else [Resolved(ref, ref.face_id, held)]
        return None

    async def _resolve(
        self,
        ix: IndexSet,
        scope: account_pb2.AccountScope,
        ref: matcher_pb2.Reference,
        known: dict[str, tuple[attributes_pb2.Attribute, int]] | None = None,
    ) -> list[Resolved]:
        which = ref.WhichOneof("source")  # a raw descriptor is always `_held`
        if which == "face_id":
            return [Resolved(ref, ref.face_id, await self._face_vector(ix, scope, ref.face_id))]
        if which in ("event_id", "event_external_id"):
            return await self._resolve_events(scope, ref)
        if which == "attribute_id":
            return [Resolved(ref, "", await self._attribute_vector(scope, ref.attribute_id, known))]
        # External id: every visible face carrying it is one reference.
        reply = await self.faces.ListFaces(
            faces_pb2.ListFacesRequest(
                scope=scope,
                filter=faces_pb2.FaceFilter(external_ids=[ref.external_id]),
                page=paging_pb2.Page(page=1, page_size=PAGE),
            )
        )
        if not reply.faces:
            raise errors.LunaError(
                errors.NO_FACE_WITH_EXTERNAL_ID,
                f"No one face found with external id {ref.external_id}",
            )
        out = []
        for face in sorted(reply.faces, key=lambda f: f.face_id):
            if not face.has_attribute:
                continue
            try:
                vec = await self._face_vector(ix, scope, face.face_id)
            except errors.LunaError:
                continue  # a face of that external id without a descriptor cannot match
            one = matcher_pb2.Reference()
            one.CopyFrom(ref)
            out.append(Resolved(one, face.face_id, vec))
        if not out:
            raise errors.LunaError(
                errors.DESCRIPTOR_NOT_FOUND,
                f"Face descriptor of version {self.version} is not found for object with id "
                f"'{reply.faces[0].face_id}'.",
            )
        return out

    async def _attribute_vector(
        self,
        scope: account_pb2.AccountScope,
        attribute_id: str,
        known: dict[str, tuple[attributes_pb2.Attribute, int]] | None,
    ) -> np.ndarray:
        """From the attribute cache (FACES_CHANGES notices, earlier reads), else from the
        faces service, which raises the documented errors (22011 not found, 22018)."""
        cache = self.sync.attributes
        vec = cache.get(attribute_id, search_account(scope))
        if vec is not None:
            return vec
        deletes = cache.deletes
        read = (known or {}).get(attribute_id)
        if read is not None:
            attribute, deletes = read
        else:
            reply = await self.attributes.GetAttribute(
                attributes_pb2.GetAttributeRequest(
                    scope=scope, attribute_id=attribute_id, descriptor_version=self.version
                )
            )
            attribute = reply.attribute
        desc = attribute.data.descriptors[0]
        vec = unit_vector(desc.descriptor, desc.version, self.version)
        expire = attribute.expire_time.seconds + attribute.expire_time.nanos / 1e9
        cache.put_read(attribute_id, attribute.account_id, expire, vec, deletes)
        return vec

    async def _resolve_events(
        self, scope: account_pb2.AccountScope, ref: matcher_pb2.Reference
    ) -> list[Resolved]:
        if ref.WhichOneof("source") == "event_id":
            filters = {"event_ids": [ref.event_id]}
        else:
            filters = {"external_ids": [ref.event_external_id]}
        found = await self._event_candidates(scope, filters, MAX_REFERENCES)
        if found:
            return [
                Resolved(
                    ref, "", unit_vector(c.descriptor, c.version, self.version), event_id=c.event_id
                )
                for c in sorted(found, key=lambda c: c.event_id)
            ]
        if ref.event_external_id:
            raise errors.LunaError(
                errors.NO_EVENT_WITH_EXTERNAL_ID,
                f"No one event found with external id {ref.event_external_id}",
            )
        # No descriptor: GetEvent raises 23001 when the event itself is not visible.
        await self.events.GetEvent(events_pb2.GetEventRequest(scope=scope, event_id=ref.event_id))
        raise errors.LunaError(
            errors.DESCRIPTOR_VERSION_NOT_FOUND,
            f"Descriptor of version {self.version} is not found for object with id "
            f"'{ref.event_id}'.",
        )

    async def _event_candidates(
        self, scope: account_pb2.AccountScope, filters: dict[str, Any], limit: int = 0
    ) -> Sequence[events_pb2.EventCandidate]:
        request = events_pb2.SelectEventCandidatesRequest(
            scope=scope, kind=events_pb2.DESCRIPTOR_KIND_FACE, version=self.version, limit=limit
        )
        request.filters.update(filters)
        return (await self.events.SelectEventCandidates(request)).candidates

    async def _match_events(
        self,
        scope: account_pb2.AccountScope,
        c: matcher_pb2.EventCandidates,
        queries: np.ndarray,
    ) -> list[matcher_pb2.EventCandidatesResult]:
        """One result per reference row of `queries`: the best events of the set, exactly."""
        filters = json_format.MessageToDict(c.filters)
        found = await self._event_candidates(scope, filters)
        out = [matcher_pb2.EventCandidatesResult() for _ in range(queries.shape[0])]
        if not found:
            return out
        vectors = np.stack([unit_vector(e.descriptor, e.version, self.version) for e in found])
        sims = cosine_to_similarity(queries @ vectors.T)
        limit = c.limit or DEFAULT_LIMIT
        for j, row in enumerate(sims):
            for k in np.argsort(-row, kind="stable")[:limit].tolist():
                if row[k] < c.threshold:
                    break
                out[j].matches.add(event=found[k].event, similarity=float(row[k]))
            out[j].total_found = len(out[j].matches)
        return out

    async def _face_vector(
        self, ix: IndexSet, scope: account_pb2.AccountScope, face_id: str
    ) -> np.ndarray:
        vec = local_descriptor(ix, face_id, search_account(scope))
        if vec is not None:
            return vec
        # Not indexed (no descriptor of our version, or not visible): the faces service
        # answers with the documented error (22002 not found, 11032 no attribute, 22018).
        reply = await self.faces.GetFaceAttribute(
            faces_pb2.GetFaceAttributeRequest(
                scope=scope, face_id=face_id, descriptor_version=self.version
            )
        )
        descs = reply.attribute.data.descriptors
        if not descs:
            raise errors.LunaError(
                errors.DESCRIPTOR_NOT_FOUND,
                f"Face descriptor of version {self.version} is not found for object with id "
                f"'{face_id}'.",
            )
        return unit_vector(descs[0].descriptor, descs[0].version, self.version)

    async def _candidates(
        self, ix: IndexSet, scope: account_pb2.AccountScope, c: matcher_pb2.FaceCandidates
    ) -> Candidates | None:
        if _has_db_filters(c):
            face_ids = await self._filtered_ids(scope, c)
            return FaceIdCandidates(tuple(face_ids)) if face_ids else None
        if c.face_ids:
            wanted = list(dict.fromkeys(c.face_ids))
            if c.list_id:
                wanted = [f for f in wanted if c.list_id in (ix.face_lists(f) or ())]
            return FaceIdCandidates(tuple(wanted)) if wanted else None
        if c.list_id:
            return ListCandidates(c.list_id)
        return AccountCandidates()

    async def _filtered_ids(
        self, scope: account_pb2.AccountScope, c: matcher_pb2.FaceCandidates
    ) -> list[str]:
        flt = pbjson.copy_fields(c, faces_pb2.FaceFilter(), _FILTER_FIELDS)
        out: list[str] = []
        page = 1
        while True:
            reply = await self.faces.ListFaces(
                faces_pb2.ListFacesRequest(
                    scope=scope, filter=flt, page=paging_pb2.Page(page=page, page_size=PAGE)
                )
            )
            out.extend(f.face_id for f in reply.faces if f.has_attribute)
            if len(reply.faces) < PAGE:
                return list(dict.fromkeys(out))
            if len(out) > self.filter_max_faces:
                raise _bad(
                    f"candidate filters select more than {self.filter_max_faces} faces; "
                    "narrow them (e.g. with list_id)"
                )
            page += 1

    async def _face_records(
        self, scope: account_pb2.AccountScope, face_ids: set[str]
    ) -> dict[str, bytes]:
        """Serialized records of matched faces visible to the caller: the matcher's own
        (FACES_CHANGES keeps them), and through ListFaces only for an indexed face without
        one (a snapshot from before records were kept), with the caller's scope."""
        records = self.sync.records
        generation = records.generation
        found, missing = records.get_many(face_ids, search_account(scope))
        if not missing:
            return found
        chunks = [missing[i : i + PAGE] for i in range(0, len(missing), PAGE)]
        replies = await asyncio.gather(
            *(
                self.faces.ListFaces(
                    faces_pb2.ListFacesRequest(
                        scope=scope,
                        filter=faces_pb2.FaceFilter(face_ids=chunk),
                        page=paging_pb2.Page(page=1, page_size=len(chunk)),
                        with_lists=True,
                    )
                )
                for chunk in chunks
            )
        )
        read = [f for r in replies for f in r.faces]
        records.put_many(read, generation)
        found.update((f.face_id, f.SerializeToString()) for f in read)
        return found

    # --- MatchRaw ----------------------------------------------------------------------------
    def match_raw(self, req: matcher_pb2.MatchRawRequest) -> matcher_pb2.MatchRawResponse:
        if not req.references or not req.candidates:
            raise _bad("references and candidates must not be empty")
        refs = np.stack(
            [
                unit_vector(e.descriptor.descriptor, e.descriptor.version, self.version)
                for e in req.references
            ]
        )
        cands = np.stack(
            [
                unit_vector(e.descriptor.descriptor, e.descriptor.version, self.version)
                for e in req.candidates
            ]
        )
        sims = cosine_to_similarity(refs @ cands.T)
        out = matcher_pb2.MatchRawResponse()
        for i, ref in enumerate(req.references):
            row = out.results.add(reference_id=ref.id)
            for j in np.argsort(-sims[i], kind="stable").tolist():
                row.matches.add(candidate_id=req.candidates[j].id, similarity=float(sims[i, j]))
        return out


class VersionedMatching:
    """One `Matching` (its own Sync, IndexSet and snapshot directory) per descriptor version;
    a request is served by the index of its version only, so versions are never compared."""

    def __init__(self, by_version: dict[int, Matching], default: int) -> None:
        self.by_version = by_version
        self.default = default

    def version_of(self, requested: int, references: Sequence[Any]) -> int:
        """The request's version; 0: the first raw descriptor reference's, else the default."""
        version = requested
        if not version:
            raw = (
                r.descriptor.version
                for r in references
                if r.WhichOneof("source") == "descriptor" and r.descriptor.version
            )
            version = next(raw, self.default)
        if version not in self.by_version:
            check_version(version, self.default)  # 31001, as for any unmatched version
        return version

    async def match_faces(
        self, req: matcher_pb2.MatchFacesRequest
    ) -> matcher_pb2.MatchFacesResponse:
        version = self.version_of(req.descriptor_version, req.references)
        return await self.by_version[version].match_faces(req)

    def match_raw(self, req: matcher_pb2.MatchRawRequest) -> matcher_pb2.MatchRawResponse:
        refs = [e.descriptor.version for e in req.references if e.descriptor.version]
        version = refs[0] if refs else self.default
        if version not in self.by_version:
            check_version(version, self.default)
        return self.by_version[version].match_raw(req)

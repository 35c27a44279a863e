"""cross_match (type 6): every reference's best candidates, references and candidates both
faces or events chosen by filters.

Planning fixes the references (ascending ids) and cuts them into blocks of PART_SIZE, so
several workers share the task. A part resolves the candidates by their filters, loads their
descriptors and keeps them for the task's later parts in this process (one task at a time);
up to HNSW_MIN candidates are scanned exactly by blocked matrix products, more go through an
HNSW index searched wider than `limit` and re-ranked exactly. Parts only read, so a redelivered
part computes again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
from luna.matcher.v1 import matcher_pb2

from services.common import descriptors, errors
from services.tasks import analytics, kinds
from services.tasks.kinds import UUID, Deps, Kind, Outcome, closed, one_of
from services.tasks.types import objects

PART_SIZE = 1000
HNSW_MIN = 200_000
# The matcher's MatchFaces: references per call, most matches per candidate set.
MATCHER_REFERENCES = 30
MATCHER_LIMIT = 1000
MATCHER_CONCURRENCY = 4
TYPES = ["faces", "events", "attributes"]
REQUIRED_FILTERS = ["reference_type", "candidate_type", "reference_filters", "candidate_filters"]


@dataclass
class Candidates:
    key: tuple[Any, ...]
    ids: list[str]
    vectors: np.ndarray
    hnsw: analytics.HnswCandidates | None


_cached: Candidates | None = None
_lock = asyncio.Lock()


async def candidates(deps: Deps, subtask: dict[str, Any]) -> Candidates:
    global _cached
    task = subtask["task_content"]
    key = (subtask["task_id"], str(subtask["account_id"]))
    async with _lock:
        if _cached is not None and _cached.key == key:
            return _cached
        flt = task["filters"]
        account = str(subtask["account_id"])
        ids = await objects.object_ids(
            deps, account, flt["candidate_type"], flt["candidate_filters"]
        )
        kept, matrix = await objects.descriptors(deps, account, flt["candidate_type"], ids)
        hnsw = None
        if len(kept) > HNSW_MIN:
            hnsw = await asyncio.to_thread(analytics.HnswCandidates.build, matrix)
        _cached = Candidates(key, kept, analytics.unit_rows(matrix), hnsw)
        return _cached


def by_matcher(deps: Deps, task: dict[str, Any]) -> str:
    """The list whose candidates the matcher's indexes answer (faces of one list, nothing
    else), or "" when the candidates must be loaded here."""
    flt = task["filters"]
    cands = flt["candidate_filters"]
    if (
        deps.matcher is None
        or flt["candidate_type"] != "faces"
        or set(cands) != {"list_id"}
        or int(task["limit"]) > MATCHER_LIMIT
    ):
        return ""
    return str(cands["list_id"])


async def match_in_list(
    deps: Deps, account_id: str, list_id: str, ids: list[str], matrix: np.ndarray, task: dict
) -> list[dict[str, Any]]:
    """Raw-descriptor references against one list through MatcherService.MatchFaces (HNSW
    with exact re-rank for a large list, BLAS for a small one, in the matcher)."""
    version = deps.types.descriptor_version
    limit, threshold = int(task["limit"]), float(task["threshold"])
    gate = asyncio.Semaphore(MATCHER_CONCURRENCY)

    async def batch(start: int) -> list[dict[str, Any]]:
        refs = [
            matcher_pb2.Reference(
                id=rid,
                descriptor=matcher_pb2.RawDescriptor(
                    descriptor=descriptors.pack(vec), version=version
                ),
            )
            for rid, vec in zip(
                ids[start : start + MATCHER_REFERENCES],
                matrix[start : start + MATCHER_REFERENCES],
                strict=True,
            )
        ]
        request = matcher_pb2.MatchFacesRequest(
            scope=kinds.scope(account_id),
            references=refs,
            candidates=[
                matcher_pb2.FaceCandidates(list_id=list_id, limit=limit, threshold=threshold)
            ],
        )
        async with gate:
            reply = await deps.matcher.MatchFaces(request)
        out = []
        for res in reply.results:
            found = [
                {"candidate_id": m.face.face_id, "similarity": round(m.similarity, 6)}
                for m in res.candidates[0].matches
                if m.similarity >= threshold
            ]
            if found:
                out.append({"reference_id": res.reference.id, "candidates": found})
        return out

    parts = await asyncio.gather(*(batch(s) for s in range(0, len(ids), MATCHER_REFERENCES)))
    return [m for p in parts for m in p]


class CrossMatch(Kind, name="cross_match"):
    schema = closed(
        required=["filters"],
        properties={
            "filters": closed(
                {
                    "reference_type": one_of(*TYPES),
                    "candidate_type": one_of(*TYPES),
                    "reference_filters": {"type": "object"},
                    "candidate_filters": {"type": "object"},
                    "descriptor": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"type": one_of("face", "body")},
                        "required": ["type"],
                    },
                    "account_id": UUID,
                },
                required=REQUIRED_FILTERS,
            ),
            "threshold": {"type": "number", "minimum": 0, "maximum": 1},
            "limit": {"type": "integer", "minimum": 1},
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        flt = content["filters"]
        kinds.check_filters_account(account_id, flt)
        for side in ("reference", "candidate"):
            sub = flt[f"{side}_filters"]
            if "account_id" in sub:
                raise errors.bad_json(
                    f"content.filters.{side}_filters",
                    "Additional properties are not allowed ('account_id' was unexpected)",
                )
            objects.check_filters(flt[f"{side}_type"], sub, account_id)
        objects.descriptor_type_check(flt.get("descriptor"))
        flt.setdefault("descriptor", {"type": "face"})
        content.setdefault("threshold", 0.0)
        content.setdefault("limit", 5)
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        flt, account_id = task["content"]["filters"], str(task["account_id"])
        ids = await objects.object_ids(
            deps, account_id, flt["reference_type"], flt["reference_filters"]
        )
        return [{"references": ids[i : i + PART_SIZE]} for i in range(0, len(ids), PART_SIZE)]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        refs: list[str] = subtask["content"].get("references", [])
        task = subtask["task_content"]
        if not refs:
            return Outcome({"matches": []})
        kept, matrix = await objects.descriptors(
            deps, str(subtask["account_id"]), task["filters"]["reference_type"], refs
        )
        list_id = by_matcher(deps, task)
        if list_id:
            if not kept:
                return Outcome({"matches": []})
            account = str(subtask["account_id"])
            return Outcome({"matches": await match_in_list(deps, account, list_id, kept, matrix,
                                                           task)})  # fmt: skip
        cands = await candidates(deps, subtask)
        limit, threshold = int(task["limit"]), float(task["threshold"])

        def compute() -> tuple[np.ndarray, np.ndarray]:
            if cands.hnsw is not None:
                return cands.hnsw.top(matrix, limit, threshold)
            return analytics.top_matches(matrix, cands.vectors, limit, threshold)

        if not kept or not cands.ids:
            return Outcome({"matches": []})
        idx, sim = await asyncio.to_thread(compute)
        matches = []
        for rid, row, sims in zip(kept, idx.tolist(), sim.tolist(), strict=True):
            found = [
                {"candidate_id": cands.ids[c], "similarity": round(s, 6)}
                for c, s in zip(row, sims, strict=True)
                if c >= 0
            ]
            # "References with all filtered matches also will be ignored."
            if found:
                matches.append({"reference_id": rid, "candidates": found})
        return Outcome({"matches": matches})

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        return [m for r in results if r for m in r.get("matches", [])]


kinds.register(CrossMatch())

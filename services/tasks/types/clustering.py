"""clustering (type 2): faces or events by filters, grouped by descriptor similarity.

Objects whose similarity is at least `threshold` end in one cluster: the clusters are the
connected components of that graph (LUNA's "connected components of the similarity graph").
Planning fixes the object set (ascending ids, at most `limit`); part i compares its block of
rows with every later row by blocked matrix products and returns only a spanning forest of
what it found (node -> smallest node of its local component), so a part's result is at most
one entry per object however dense the graph. Collecting joins the parts' forests; the union
of spanning forests has the same components as the union of the graphs. Parts only read, so a
redelivered part simply computes again.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np

from services.common import errors
from services.tasks import analytics, kinds
from services.tasks.kinds import FLAG, OBJECTS, Deps, Kind, Outcome, closed, one_of
from services.tasks.types import objects

DEFAULT_THRESHOLD = 0.81
MAX_LIMIT = 20000
MIN_PART_ROWS = 2500
MAX_PARTS = 8


def row_blocks(n: int) -> list[tuple[int, int]]:
    """Row ranges of roughly equal pair counts (the upper triangle thins out downwards)."""
    if n == 0:
        return [(0, 0)]
    parts = max(1, min(MAX_PARTS, n // MIN_PART_ROWS))
    # Rows [0, r) hold n^2/2 - (n - r)^2/2 pairs: equal shares at r_k = n (1 - sqrt(1 - k/p)).
    cuts = [round(n * (1 - (1 - k / parts) ** 0.5)) for k in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def forest(n: int, a: np.ndarray, b: np.ndarray) -> list[list[int]]:
    """[node, root] for every node in a non-trivial component (root: its smallest node)."""
    labels = analytics.components(n, a, b)
    order = np.argsort(labels, kind="stable")
    first = np.full(labels.max() + 1 if n else 0, -1, dtype=np.int64)
    # Nodes are visited in ascending order inside each label, so the first one is the root.
    seen = labels[order]
    starts = np.concatenate([[True], seen[1:] != seen[:-1]]) if n else np.zeros(0, bool)
    first[seen[starts]] = order[starts]
    roots = first[labels]
    links = np.nonzero(roots != np.arange(n))[0]
    return [[int(i), int(roots[i])] for i in links]


class Clustering(Kind, name="clustering"):
    schema = closed(
        required=["objects_type", "filters"],
        properties={
            **OBJECTS,
            "threshold": {"type": "number", "minimum": 0, "maximum": 1},
            "descriptor": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"type": one_of("face", "body")},
                "required": ["type"],
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            "params": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"use_track_info": FLAG},
            },
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        objects.check_filters(content["objects_type"], content["filters"], account_id)
        objects.descriptor_type_check(content.get("descriptor"))
        if "params" in content and content["objects_type"] != "events":
            raise errors.bad_json("content.params", "params are allowed for events only")
        if content.get("params", {}).get("use_track_info"):
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED, "params.use_track_info is not implemented yet"
            )
        content.setdefault("threshold", DEFAULT_THRESHOLD)
        content.setdefault("limit", MAX_LIMIT)
        content.setdefault("descriptor", {"type": "face"})
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        content, account_id = task["content"], str(task["account_id"])
        ids = await objects.object_ids(
            deps, account_id, content["objects_type"], content["filters"], content["limit"]
        )
        return [{"ids": ids, "rows": [a, b]} for a, b in row_blocks(len(ids))]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        content, task = subtask["content"], subtask["task_content"]
        ids: list[str] = content.get("ids", [])
        lo, hi = content.get("rows", [0, 0])
        kept, matrix = await objects.descriptors(
            deps, str(subtask["account_id"]), task["objects_type"], ids
        )
        # Rows are positions in the planned ids; objects without a descriptor are left out.
        position = {fid: i for i, fid in enumerate(ids)}
        where = np.array([position[k] for k in kept], dtype=np.int64)
        mine = np.nonzero((where >= lo) & (where < hi))[0]
        missing = sorted(set(range(lo, hi)) - set(where[mine].tolist()))

        def compute() -> list[list[int]]:
            if mine.shape[0] == 0:
                return []
            x = analytics.unit_rows(matrix)
            cos_t = analytics.similarity_to_cosine(float(task["threshold"]))
            # Rows of this block against every row from the block's first on.
            start = int(mine[0])
            a, b = analytics.pairs_at_least(x[start:], cos_t, rows=mine - start)
            a, b = a + start, b + start
            keep = b > a
            local = forest(x.shape[0], a[keep], b[keep])
            return [[int(where[i]), int(where[r])] for i, r in local]

        links = await asyncio.to_thread(compute)
        result: dict[str, Any] = {"links": links, "missing": missing}
        if lo == 0:  # the object set, once
            result["ids"] = ids
        return Outcome(result)

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        results = [r for r in results if r]
        ids: list[str] = next((r["ids"] for r in results if "ids" in r), [])
        if not ids:
            return {"clusters": [], "total_objects": 0, "total_clusters": 0}
        n = len(ids)
        missing = {m for r in results for m in r["missing"]}
        links = np.array([pair for r in results for pair in r["links"]], dtype=np.int64)
        links = links.reshape(-1, 2)
        labels = analytics.components(n, links[:, 0], links[:, 1])
        present = np.array([i not in missing for i in range(n)], dtype=bool)
        kept_ids = [fid for fid, ok in zip(ids, present, strict=True) if ok]
        clusters = analytics.clusters_of(labels[present], kept_ids)
        return {
            "clusters": clusters,
            "total_objects": len(kept_ids),
            "total_clusters": len(clusters),
        }


kinds.register(Clustering())

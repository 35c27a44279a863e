"""roc (type 7): how well descriptors separate the user's own labelled faces.

Every pair of markup faces is an expected positive (same label) or negative (different
labels); the ROC curve lists FPR and TPR at each similarity threshold, with its AUC, the point
where FPR = 1 - TPR (type I and II error rates equal), the points at `key_FPRs` and the
probability that a face's top-N most similar others hold one of its positives. Parts take
blocks of query rows and return histograms (1001 bins of similarity) and hit counts, so the
merge is a sum and a part's result has a fixed size whatever the markup.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np

from services.common import errors
from services.tasks import analytics, kinds
from services.tasks.kinds import UUID, Deps, Kind, Outcome, closed
from services.tasks.store import ItemError
from services.tasks.types import objects

ROWS_PER_PART = 2500


def item_id(item: dict[str, Any]) -> str:
    return str(item.get("face_id") or item["attribute_id"])


async def markup_descriptors(
    deps: Deps, account_id: str, markup: list[dict[str, Any]]
) -> tuple[list[str], np.ndarray]:
    """Descriptors of the markup's faces and attributes, in markup order."""
    faces = [m["face_id"] for m in markup if "face_id" in m]
    attrs = [m["attribute_id"] for m in markup if "attribute_id" in m]
    rows: dict[str, np.ndarray] = {}
    for kind, ids in (("faces", faces), ("attributes", attrs)):
        if ids:
            kept, matrix = await objects.descriptors(deps, account_id, kind, ids)
            rows.update(zip(kept, matrix, strict=True))
    order = [item_id(m) for m in markup if item_id(m) in rows]
    if not order:
        return [], np.zeros((0, 128), dtype=np.float32)
    return order, np.stack([rows[i] for i in order])


class Roc(Kind, name="roc"):
    schema = closed(
        required=["markup", "filters"],
        properties={
            "markup": {
                "type": "array",
                "minItems": 2,
                "maxItems": 20000,
                "items": {
                    "oneOf": [
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["face_id", "label"],
                            "properties": {"face_id": UUID, "label": {"type": "integer"}},
                        },
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["attribute_id", "label"],
                            "properties": {"attribute_id": UUID, "label": {"type": "integer"}},
                        },
                    ]
                },
            },
            "filters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"account_id": UUID},
            },
            "threshold_hit_top": {"type": "number", "minimum": 0, "maximum": 1},
            "limit": {"type": "integer", "minimum": 1},
            "key_FPRs": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        kinds.check_filters_account(account_id, content["filters"])
        counts = Counter(item_id(m) for m in content["markup"])
        dup = next((f for f, c in counts.items() if c > 1), None)
        if dup is not None:
            raise errors.bad_json("content.markup", f"object {dup} is marked up more than once")
        attrs = [m["attribute_id"] for m in content["markup"] if "attribute_id" in m]
        if attrs:
            kept, _ = await objects.descriptors(deps, account_id, "attributes", attrs)
            gone = sorted(set(attrs) - set(kept))
            if gone:
                raise errors.LunaError(
                    errors.ATTRIBUTE_NOT_FOUND, f"Attributes with id {gone[0]} not found"
                )
        wanted = [m["face_id"] for m in content["markup"] if "face_id" in m]
        # Every face must be the task account's: another account's face is "not found".
        seen: set[str] = set()
        for s in range(0, len(wanted), objects.CHUNK):
            chunk = wanted[s : s + objects.CHUNK]
            found = await kinds.faces_of(deps, kinds.scope(account_id), chunk)
            seen.update(f.face_id for f in found)
        missing = [f for f in wanted if f not in seen]
        if missing:
            raise errors.LunaError(errors.FACE_NOT_FOUND, f"Face with id '{missing[0]}' not found")
        content.setdefault("threshold_hit_top", 0.0)
        content.setdefault("limit", 5)
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        n = len(task["content"]["markup"])
        return [{"rows": [s, min(n, s + ROWS_PER_PART)]} for s in range(0, n, ROWS_PER_PART)]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        task = subtask["task_content"]
        lo, hi = subtask["content"]["rows"]
        markup = task["markup"]
        ids = [item_id(m) for m in markup]
        kept, matrix = await markup_descriptors(deps, str(subtask["account_id"]), markup)
        label_of = {item_id(m): int(m["label"]) for m in markup}
        position = {fid: i for i, fid in enumerate(ids)}
        where = np.array([position[k] for k in kept], dtype=np.int64)
        rows = np.nonzero((where >= lo) & (where < hi))[0]
        have = set(kept)
        failures = [
            ItemError(
                errors.DESCRIPTOR_NOT_FOUND,
                f"Face descriptor of version {deps.types.descriptor_version}"
                f" is not found for object with id '{fid}'.",
                fid,
            )
            for fid in ids[lo:hi]
            if fid not in have
        ]

        def compute() -> analytics.RocCounts:
            if not kept:
                return analytics.RocCounts.zero()
            labels = np.array([label_of[k] for k in kept], dtype=np.int64)
            return analytics.roc_counts(
                analytics.unit_rows(matrix), labels, rows, float(task["threshold_hit_top"])
            )

        counts = await asyncio.to_thread(compute)
        return Outcome(counts.as_json(), failures)

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        total = analytics.RocCounts.zero()
        for r in results:
            if r:
                total = total.add(analytics.RocCounts.from_json(r))
        content = task["content"]
        got = analytics.roc_finish(total, int(content["limit"]), content.get("key_FPRs"))
        return {
            "roc": got.roc,
            "hit_top_probability": got.hit_top,
            "auc": got.auc,
            "type_I_and_II_error_rates_equal_point": got.eer,
            "key_points": got.key_points,
        }


kinds.register(Roc())

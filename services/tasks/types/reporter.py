"""reporter (type 3): a clustering task's result as CSV in a ZIP.

The first two columns are the cluster number (the cluster's position in the clustering result,
from 0) and the object id, then the chosen info columns of each face or event, read from their
owner when the report runs; `save_images` adds `images/<object id>/<sample id>.<ext>`. Only a
finished (done) clustering task of the same account can be reported. Parts of 1000 objects
only read, so a redelivered part reads again.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.common import errors
from services.tasks import kinds
from services.tasks.kinds import FLAG, UUID, Deps, Kind, Outcome, closed
from services.tasks.store import DONE, ItemError
from services.tasks.types import exporter

PART_SIZE = 1000
CLUSTERING = 2
FACE_COLUMNS = ["user_data", "create_time", "lists", "external_id", "avatar", "event_id"]
DEFAULT_FACE_COLUMNS = ["user_data", "create_time", "external_id", "avatar", "event_id"]
EVENT_COLUMNS = [c for c in exporter.EVENT_COLUMNS if c != "event_id"]


class Reporter(Kind, name="reporter"):
    schema = closed(
        required=["filters"],
        properties={
            "filters": closed(
                {"account_id": UUID, "task_id": {"type": "integer", "minimum": 1}},
                required=["task_id"],
            ),
            "columns": exporter.COLUMNS,
            "csv_delimiter": exporter.CSV_DELIMITER,
            "save_images": FLAG,
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        kinds.check_filters_account(account_id, content["filters"])
        task_id = int(content["filters"]["task_id"])
        # Another account's task is not found, exactly like a missing one.
        source = await deps.store.get(task_id, account_id)
        if source["task_type"] != CLUSTERING:
            raise errors.LunaError(
                errors.TASK_NOT_REPORTABLE,
                f"Tasks with type '{source['task_type']}' does not support a build report",
            )
        if source["task_status"] != DONE:
            raise errors.LunaError(
                errors.TASK_BAD_STATUS_FOR_REPORT,
                f"Task '{task_id}' with status {source['task_status']} can not be reported:"
                " only a done clustering task has clusters",
            )
        objects_type = source["content"]["objects_type"]
        allowed = FACE_COLUMNS if objects_type == "faces" else EVENT_COLUMNS
        columns = content.setdefault(
            "columns", DEFAULT_FACE_COLUMNS if objects_type == "faces" else EVENT_COLUMNS
        )
        bad = [c for c in columns if c not in allowed]
        if bad:
            raise errors.bad_json("content.columns", f"{bad[0]!r} is not one of {allowed}")
        content["objects_type"] = objects_type
        content.setdefault("csv_delimiter", ",")
        content.setdefault("save_images", 0)
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        content, account_id = task["content"], str(task["account_id"])
        _, body = await deps.store.result(int(content["filters"]["task_id"]), account_id)
        clusters = orjson.loads(body)["result"]["clusters"]
        rows = [[n, oid] for n, cluster in enumerate(clusters) for oid in cluster]
        return [{"rows": rows[i : i + PART_SIZE]} for i in range(0, len(rows), PART_SIZE)]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        rows: list[list[Any]] = subtask["content"].get("rows", [])
        task = subtask["task_content"]
        columns, faces = task["columns"], task["objects_type"] == "faces"
        scope = kinds.scope(str(subtask["account_id"]))
        ids = [oid for _, oid in rows]
        cells: dict[str, list[Any]] = {}
        images: list[dict[str, str]] = []
        failures: list[ItemError] = []
        if ids:
            found, images, failures = await exporter.object_rows(
                deps, scope, faces, ids, columns, bool(task.get("save_images"))
            )
            cells = dict(found)
        out = []
        for n, oid in rows:
            # An object deleted since the clustering keeps its place with empty info.
            out.append([str(n), oid, *cells.get(oid, [""] * len(columns))])
        return Outcome({"rows": out, "images": images}, failures)

    def collect(
        self, task: dict[str, Any], results: list[Any], errors_json: list[dict[str, Any]]
    ) -> tuple[str, bytes]:
        content = task["content"]
        id_column = "face_id" if content["objects_type"] == "faces" else "event_id"
        header = ["cluster", id_column, *content["columns"]]
        return exporter.csv_zip(
            "report.csv", content["csv_delimiter"], header, results, errors_json
        )


kinds.register(Reporter())

"""LUNA task types by name (catalogue tasks-api): the tasks service registers its kinds under
these numbers and the gateway routes `/tasks/<name>` to them."""

from __future__ import annotations

TASK_TYPES: dict[str, int] = {
    "linker": 1,
    "clustering": 2,
    "reporter": 3,
    "gc": 4,
    "additional_extract": 5,
    "cross_match": 6,
    "roc": 7,
    "exporter": 8,
    "estimator": 9,
}

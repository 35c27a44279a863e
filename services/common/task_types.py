"""LUNA's task types: the number a task kind has on the wire (`task_type`) by the name its
route uses (`POST /6/tasks/<name>`, `POST /2/tasks/<name>`). The gateway routes by it; the
tasks service registers its kinds under the same numbers."""

from __future__ import annotations

NAMES: dict[str, int] = {
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

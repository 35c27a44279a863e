"""Settings of the tasks service and its workers, read by their apps (`app.py`, the worker's
`serve`), which pass the values in; the engine and the workers never read the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services.common import config

SWEEP_INTERVAL = config.declare(
    "LUNA_TASKS_SWEEP_INTERVAL",
    2.0,
    "Seconds between the tasks service's passes over unplanned, unpublished and uncollected "
    "tasks (what a crash may have left behind).",
)
MAX_RESULT_ERRORS = config.declare(
    "LUNA_TASKS_MAX_RESULT_ERRORS",
    100000,
    "Most task errors embedded in a task result (all stay in the error log).",
)
ACK_WAIT = config.declare(
    "LUNA_TASKS_ACK_WAIT",
    10.0,
    "Seconds a task part may go without a worker heartbeat before NATS hands it to another "
    "worker (heartbeats are sent every third of it while a part runs).",
)
MAX_ATTEMPTS = config.declare(
    "LUNA_TASKS_MAX_ATTEMPTS",
    5,
    "Times a task part is tried before it is recorded as failed (dead letter).",
)
CONCURRENCY = config.declare(
    "LUNA_TASKS_WORKER_CONCURRENCY", 2, "Task parts one worker process runs at once."
)


@dataclass(frozen=True)
class Work:
    """How the engine and the workers pace task parts."""

    sweep_interval_s: float
    max_result_errors: int
    ack_wait_s: float
    max_attempts: int


def work() -> Work:
    return Work(
        sweep_interval_s=SWEEP_INTERVAL.get_float(),
        max_result_errors=MAX_RESULT_ERRORS.get_int(),
        ack_wait_s=ACK_WAIT.get_float(),
        max_attempts=MAX_ATTEMPTS.get_int(),
    )

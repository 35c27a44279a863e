"""Settings of the tasks service and its workers, read by their apps (`app.py`, the worker's
`serve`), which pass the values in; the engine and the workers never read the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services.common import config, shared_settings
from services.tasks.sources import Sources

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

DISK_ROOTS = config.declare(
    "LUNA_TASKS_DISK_ROOTS",
    "",
    "Directories (separated by ':') an estimator task may read as a network disk; empty "
    "refuses network disk sources. The data directory is never readable.",
)
SOURCE_NETWORKS = config.declare(
    "LUNA_TASKS_SOURCE_NETWORKS",
    "",
    "Networks (comma-separated CIDRs) that ZIP-by-URL and FTP sources may reach; empty "
    "refuses them.",
)
SOURCE_MAX_BYTES = config.declare(
    "LUNA_TASKS_SOURCE_MAX_BYTES",
    512 * 1024 * 1024,
    "Largest archive or file a task source may download.",
)
SOURCE_TIMEOUT = config.declare(
    "LUNA_TASKS_SOURCE_TIMEOUT", 60.0, "Seconds a task source download may take."
)
ESTIMATOR_PART_SIZE = config.declare(
    "LUNA_TASKS_ESTIMATOR_PART_SIZE", 50, "Images per part of an estimator task."
)
ESTIMATOR_CONCURRENCY = config.declare(
    "LUNA_TASKS_ESTIMATOR_CONCURRENCY",
    8,
    "Images one worker process sends through the pipeline at once, shared by its parts (so "
    "a lone last part can use every slot).",
)
EXTRACTABLE_VERSIONS = config.declare(
    "LUNA_TASKS_EXTRACTABLE_VERSIONS",
    "200,201",
    "Descriptor versions the estimator can extract (comma-separated); additional_extract "
    "refuses others with 34001.",
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


@dataclass(frozen=True)
class Types:
    """What the task types read: the descriptor versions, the estimator's batches."""

    descriptor_version: int
    extractable_versions: str  # comma-separated
    estimator_part_size: int
    estimator_concurrency: int


def types() -> Types:
    return Types(
        descriptor_version=shared_settings.DEFAULT_DESCRIPTOR_VERSION.get_int(),
        extractable_versions=EXTRACTABLE_VERSIONS.get(),
        estimator_part_size=ESTIMATOR_PART_SIZE.get_int(),
        estimator_concurrency=ESTIMATOR_CONCURRENCY.get_int(),
    )


def sources() -> Sources:
    return Sources(
        disk_roots=DISK_ROOTS.get(),
        networks=SOURCE_NETWORKS.get(),
        max_bytes=SOURCE_MAX_BYTES.get_int(),
        timeout_s=SOURCE_TIMEOUT.get_float(),
        data_dir=config.data_dir(),
    )

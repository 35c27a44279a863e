"""One place for configuration: every setting is a `LUNA_*` environment variable.

Each module declares the settings it owns at import, `X = config.declare("LUNA_X", default,
doc)`, and reads them where it uses them (`X.get()`, `.get_int()`, ...), so `luna config` and
the README table list every variable with its default and meaning, each default written once.
The settings every process shares, and the addresses and listeners `luna up` hands out, are
declared below.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    doc: str

    def get(self) -> str:
        return os.environ.get(self.name, self.default)

    def get_int(self) -> int:
        return int(self.get())

    def get_float(self) -> float:
        return float(self.get())

    def get_bool(self) -> bool:
        return self.get().lower() in ("1", "true", "yes", "on")


_DECLARED: dict[str, Setting] = {}


def declare(name: str, default: object, doc: str) -> Setting:
    """Declare a setting at import time; read it with `.get()` where it is used, so tests and
    `luna up` can change the environment after import."""
    if not name.startswith("LUNA_"):
        raise ValueError(f"setting {name!r} must start with LUNA_")
    if isinstance(default, bool):
        default = "1" if default else "0"
    return _DECLARED.setdefault(name, Setting(name, str(default), doc))


def declared() -> list[Setting]:
    """Every declared setting; imports all service modules first so none is missed."""
    import importlib
    import pkgutil

    import services

    for module in pkgutil.walk_packages(services.__path__, "services."):
        if ".tests" in module.name or module.name.endswith("__main__"):
            continue
        # Importing a module declares its settings.
        with contextlib.suppress(ImportError):  # optional extras (tensorflow tools) may be absent
            importlib.import_module(module.name)
    return sorted(_DECLARED.values(), key=lambda s: s.name)


# Settings shared by every process.
DATA_DIR = declare(
    "LUNA_DATA_DIR",
    REPO_ROOT / "var",
    "Directory for all platform state: embedded PostgreSQL and NATS data, matcher "
    "snapshots, logs, the token secret.",
)
DATABASE_URL = declare(
    "LUNA_DATABASE_URL",
    "",
    "PostgreSQL URL. Empty: `luna up` starts an embedded PostgreSQL in the data directory.",
)
NATS_URL = declare(
    "LUNA_NATS_URL",
    "",
    "NATS URL (JetStream enabled). Empty: `luna up` starts an embedded nats-server.",
)
LOG_LEVEL = declare("LUNA_LOG_LEVEL", "INFO", "Log level of every service (DEBUG, INFO, WARNING).")
LOG_JSON = declare("LUNA_LOG_JSON", False, "Write logs as JSON lines instead of text.")


def data_dir() -> Path:
    return Path(DATA_DIR.get()).resolve()


def database_url() -> str:
    return DATABASE_URL.get()


def nats_url() -> str:
    return NATS_URL.get()


def log_level() -> str:
    return LOG_LEVEL.get()


def log_json() -> bool:
    return LOG_JSON.get_bool()


# Addresses of the gRPC services. One table so the supervisor, the gateway and the docs agree.
SERVICE_PORTS: dict[str, int] = {
    "faces": 5110,
    "events": 5120,
    "estimator": 5130,
    "matcher": 5160,
    "tasks": 5150,
    "backport3": 5170,
}
# Metrics ports sit 4000 above the gRPC ports (5110 -> 9110), so they never collide with them.
METRICS_PORT_OFFSET = 4000


def _per_service(suffix: str, port_offset: int, doc: str) -> dict[str, Setting]:
    """`LUNA_<SVC>_<suffix>` for each service: host:port, by default on loopback at its gRPC
    port plus `port_offset`; `{service}` in `doc` names the service."""
    return {
        service: declare(
            f"LUNA_{service.upper()}_{suffix}",
            f"127.0.0.1:{port + port_offset}",
            doc.format(service=service),
        )
        for service, port in SERVICE_PORTS.items()
    }


SERVICE_ADDRESSES = _per_service("ADDRESS", 0, "gRPC address of the {service} service (host:port).")
METRICS_ADDRESSES = _per_service(
    "METRICS_ADDRESS",
    METRICS_PORT_OFFSET,
    "host:port of the {service} service's Prometheus `/metrics` endpoint (empty: none).",
)


def service_address(service: str) -> str:
    """host:port where `service` serves gRPC (LUNA_<SVC>_ADDRESS overrides the default)."""
    return SERVICE_ADDRESSES[service].get()


# The gateway process's listeners: declared here so `luna up` knows them without importing
# the gateway.
HOST = declare("LUNA_HOST", "127.0.0.1", "Address the REST gateway listens on.")
PORT = declare("LUNA_PORT", 5000, "Port of the REST gateway.")
TASKS_API_HOST = declare(
    "LUNA_TASKS_API_HOST", "127.0.0.1", "Address the Luna Tasks API (/2) listens on."
)
TASKS_API_PORT = declare(
    "LUNA_TASKS_API_PORT",
    5050,
    "Port of the Luna Tasks API (/2); 0 disables that listener.",
)
SENDER_PORT = declare(
    "LUNA_SENDER_PORT",
    5080,
    "Port of the Sender API listener (`/2/ws`, publish events, ...) in the gateway process; "
    "0: none.",
)
BACKPORT3_PORT = declare(
    "LUNA_BACKPORT3_PORT",
    5140,
    "Port of Backport 3's own REST listener (the /4 API, also served under /4 on LUNA_PORT); "
    "0 disables the listener.",
)


def gateway_host() -> str:
    return HOST.get()


def gateway_port() -> int:
    return PORT.get_int()

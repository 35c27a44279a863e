"""One place for configuration: every setting is a `LUNA_*` environment variable.

Each module declares the settings it owns with `setting()`, which both reads the value and
records the declaration, so `luna config` and the README table list every variable with its
default and meaning.
"""

from __future__ import annotations

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


def setting(name: str, default: str, doc: str) -> str:
    """Declare `name` (a LUNA_* variable) and return its current value as a string."""
    return declare(name, default, doc).get()


def setting_int(name: str, default: int, doc: str) -> int:
    return int(setting(name, str(default), doc))


def setting_float(name: str, default: float, doc: str) -> float:
    return float(setting(name, str(default), doc))


def setting_bool(name: str, default: bool, doc: str) -> bool:
    return setting(name, "1" if default else "0", doc).lower() in ("1", "true", "yes", "on")


def declared() -> list[Setting]:
    """Every declared setting; imports all service modules first so none is missed."""
    import importlib
    import pkgutil

    import services

    for module in pkgutil.walk_packages(services.__path__, "services."):
        if ".tests" in module.name or module.name.endswith("__main__"):
            continue
        try:
            imported = importlib.import_module(module.name)
        except ImportError:
            continue  # optional extras (tensorflow tools) may be absent
        # Settings read lazily inside functions are declared when read: modules list those
        # readers in SETTINGS so the table has them too.
        for read in getattr(imported, "SETTINGS", ()):
            read()
    for fn in (data_dir, database_url, nats_url, log_level, log_json, gateway_host, gateway_port):
        fn()
    for service in SERVICE_PORTS:
        service_address(service)
    return sorted(_DECLARED.values(), key=lambda s: s.name)


# Settings shared by every process.
def data_dir() -> Path:
    return Path(
        setting(
            "LUNA_DATA_DIR",
            str(REPO_ROOT / "var"),
            "Directory for all platform state: embedded PostgreSQL and NATS data, matcher "
            "snapshots, logs, the token secret.",
        )
    ).resolve()


def database_url() -> str:
    return setting(
        "LUNA_DATABASE_URL",
        "",
        "PostgreSQL URL. Empty: `luna up` starts an embedded PostgreSQL in the data directory.",
    )


def nats_url() -> str:
    return setting(
        "LUNA_NATS_URL",
        "",
        "NATS URL (JetStream enabled). Empty: `luna up` starts an embedded nats-server.",
    )


def log_level() -> str:
    return setting("LUNA_LOG_LEVEL", "INFO", "Log level of every service (DEBUG, INFO, WARNING).")


def log_json() -> bool:
    return setting_bool("LUNA_LOG_JSON", False, "Write logs as JSON lines instead of text.")


# Addresses of the gRPC services. One table so the supervisor, the gateway and the docs agree.
SERVICE_PORTS: dict[str, int] = {
    "faces": 5110,
    "events": 5120,
    "estimator": 5130,
    "matcher": 5160,
    "tasks": 5150,
    "backport3": 5170,
}


def service_address(service: str) -> str:
    """host:port where `service` serves gRPC (LUNA_<SVC>_ADDRESS overrides the default)."""
    default = f"127.0.0.1:{SERVICE_PORTS[service]}"
    return setting(
        f"LUNA_{service.upper()}_ADDRESS",
        default,
        f"gRPC address of the {service} service (host:port).",
    )


def gateway_host() -> str:
    return setting("LUNA_HOST", "127.0.0.1", "Address the REST gateway listens on.")


def gateway_port() -> int:
    return setting_int("LUNA_PORT", 5000, "Port of the REST gateway.")

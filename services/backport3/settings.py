"""Settings of the backport3 service."""

from __future__ import annotations

from services.common import config

DESCRIPTOR_TTL = config.declare(
    "LUNA_BACKPORT3_DESCRIPTOR_TTL",
    86400,
    "Seconds a descriptor made or detached through /4 lives while attached to neither a person "
    "nor a list, as LUNA 3 garbage-collects them; 0 keeps them forever.",
)
GC_INTERVAL = config.declare(
    "LUNA_BACKPORT3_GC_INTERVAL_S",
    60.0,
    "How often the backport3 service deletes expired unattached descriptors (seconds).",
)

"""Settings that more than one service reads, declared once (each used to declare its copy)."""

from __future__ import annotations

from services.common import config

DEFAULT_DESCRIPTOR_VERSION = config.declare(
    "LUNA_DEFAULT_DESCRIPTOR_VERSION",
    200,
    "Descriptor version assumed for a raw base64 descriptor given without one.",
)
TASKS_API_PORT = config.declare(
    "LUNA_TASKS_API_PORT",
    5050,
    "Port of the Luna Tasks API (/2); 0 disables that listener.",
)

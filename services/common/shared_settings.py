"""Settings that more than one service reads, declared once (each used to declare its copy)."""

from __future__ import annotations

from services.common import config

DEFAULT_DESCRIPTOR_VERSION = config.declare(
    "LUNA_DEFAULT_DESCRIPTOR_VERSION",
    200,
    "Descriptor version assumed for a raw base64 descriptor given without one.",
)
# Declared in config with the gateway's other listeners (`luna up` hands it out).
TASKS_API_PORT = config.TASKS_API_PORT

"""Identifiers: LUNA ids are lowercase UUID4 strings."""

from __future__ import annotations

import re
import uuid

UUID_PATTERN = r"^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$"
UUID_RE = re.compile(UUID_PATTERN)


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))

"""Luna-Request-Id: `<unix seconds>,<uuid4>`, made when absent, validated when given."""

from __future__ import annotations

import re
import time
import uuid

HEADER = "Luna-Request-Id"
_PATTERN = re.compile(r"^[0-9]{10},[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")


def new_request_id() -> str:
    return f"{int(time.time())},{uuid.uuid4()}"


def is_valid(value: str) -> bool:
    return bool(_PATTERN.match(value))

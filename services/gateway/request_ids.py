"""Luna-Request-Id: `<unix seconds>,<uuid4>`, made when absent, validated when given."""

from __future__ import annotations

import os
import re
import time

HEADER = "Luna-Request-Id"
_PATTERN = re.compile(r"^[0-9]{10},[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")
# The RFC 4122 variant puts 10 in the top bits of byte 8: its first hex digit is 8, 9, a or b.
_VARIANT = {f"{n:x}": "89ab"[n & 3] for n in range(16)}


def new_request_id() -> str:
    # What uuid.uuid4() makes (16 random bytes, version 4, RFC 4122 variant), formatted
    # straight from the bytes: a third of the cost of building the UUID object, per request.
    h = os.urandom(16).hex()
    uuid4 = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
    return f"{int(time.time())},{uuid4}"


def is_valid(value: str) -> bool:
    return bool(_PATTERN.match(value))

"""LUNA descriptor entities (`raw_descriptor`, `sdk_descriptor`, `xpk_file`), decoded in one place.

LUNA's entity is `{"type", "id", "data"}` (the LUNA Python Matcher's raw-match schema and LUNA
ID's `DescriptorRaw {id, data, type}`), plus `version` for raw descriptors. This platform first
read the bytes from `descriptor`; both names are accepted, `data` winning when both are given.
The bytes are base64 of packed little-endian float32 -- what /6/sdk returns as
`sdk_descriptor` here. VisionLabs' XPK container is not documented, so it is refused with LUNA's
error for an unreadable XPK file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from services.common import errors

DATA_FIELDS = ("data", "descriptor")


def _invalid_base64_json(path: str) -> errors.LunaError:
    return errors.bad_json(path, "value is not valid base64")


def entity_bytes(
    entity: Mapping[str, Any],
    path: str,
    bad_base64: Callable[[str], errors.LunaError] = _invalid_base64_json,
) -> tuple[bytes, int]:
    """(descriptor bytes, version or 0) of one entity; `path` names it in errors."""
    if entity.get("type") == "xpk_file":
        raise errors.LunaError(errors.XPK_INVALID, "Failed to parse xpk file")
    name = next((n for n in DATA_FIELDS if n in entity), None)
    if name is None:
        raise errors.bad_json(f"{path}.data", "field required")
    value = entity[name]
    if not isinstance(value, str):
        raise errors.bad_json(f"{path}.{name}", "str type expected")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_base64(f"{path}.{name}") from None
    return raw, int(entity.get("version") or 0)

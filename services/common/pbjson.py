"""google.protobuf.Struct <-> plain JSON values.

Struct keeps every number as a double, so integral values are turned back into ints on the
way in: LUNA flags (`store_sample: 1`) and codes must stay integers for validation, storage
and the JSON the gateway renders.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2


def plain(value: Any) -> Any:
    """Integral floats -> int, recursively."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return plain(json_format.MessageToDict(struct))


def to_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


def from_value(value: struct_pb2.Value) -> Any:
    return plain(json_format.MessageToDict(value))


def to_list_value(values: list[Any]) -> struct_pb2.ListValue:
    out = struct_pb2.ListValue()
    out.extend(values)
    return out

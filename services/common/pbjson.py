"""google.protobuf.Struct <-> plain JSON values.

Struct keeps every number as a double, so integral values are turned back into ints on the
way in: LUNA flags (`store_sample: 1`) and codes must stay integers for validation, storage
and the JSON the gateway renders.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from services.common import times

T = TypeVar("T")
M = TypeVar("M", bound=Message)


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


def copy_fields(src: Any, dst: Any, names: tuple[str, ...]) -> Any:
    """Copy the fields `names` from one message to another of a different type that names them
    alike: set ones only where the field tracks presence, messages and lists by value."""
    for name in names:
        field = src.DESCRIPTOR.fields_by_name[name]
        if field.has_presence and not src.HasField(name):
            continue
        value = getattr(src, name)
        if field.message_type is not None and not _is_repeated(field):
            getattr(dst, name).CopyFrom(value)
        elif _is_repeated(field):
            getattr(dst, name).extend(value)
        else:
            setattr(dst, name, value)
    return dst


def _is_repeated(field: Any) -> bool:
    # protobuf 5+ has `is_repeated`; older releases only the label.
    repeated = getattr(field, "is_repeated", None)
    return bool(repeated) if repeated is not None else field.label == field.LABEL_REPEATED


def dataclass_of(cls: type[T], msg: Any, **given: Any) -> T:
    """The core's filter dataclass `cls` from the proto message `msg` that names its fields alike:
    a repeated field as the dataclass default's kind (tuple or list), an unset field with
    presence as None, a Timestamp as a datetime, anything else as is. `given` fields (those
    with no plain proto counterpart) are taken as passed. The dataclass is the one list of
    fields: a field the proto lacks is an error here, not a silently ignored filter."""
    kwargs: dict[str, Any] = dict(given)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            continue
        pb_field = msg.DESCRIPTOR.fields_by_name[f.name]
        value = getattr(msg, f.name)
        if _is_repeated(pb_field):
            kwargs[f.name] = list(value) if f.default_factory is list else tuple(value)
        elif pb_field.has_presence and not msg.HasField(f.name):
            kwargs[f.name] = None
        elif isinstance(value, timestamp_pb2.Timestamp):
            kwargs[f.name] = times.from_timestamp(value)
        else:
            kwargs[f.name] = value
    return cls(**kwargs)


def message_of(cls: type[M], obj: Any, **given: Any) -> M:
    """The proto message `cls` from the core's dataclass `obj` that names its fields alike (the
    way back of `dataclass_of`): a datetime as a Timestamp, a dict as a Struct where the field is
    one, None as unset, anything else as is; `given` values replace the dataclass's own (enum
    names to numbers, nested messages)."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = given[f.name] if f.name in given else getattr(obj, f.name)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = times.to_timestamp(value)
        elif isinstance(value, dict) and (
            cls.DESCRIPTOR.fields_by_name[f.name].message_type is struct_pb2.Struct.DESCRIPTOR
        ):
            value = to_struct(value)
        kwargs[f.name] = value
    return cls(**kwargs)

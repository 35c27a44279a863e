"""pbjson.dataclass_of: the core filter dataclasses read from their proto messages by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from luna.faces.v1 import faces_pb2
from luna.tasks.v1 import tasks_pb2

from services.common.pbjson import dataclass_of


@dataclass(frozen=True)
class Faces:
    face_ids: tuple[str, ...] = ()
    user_data: str | None = None
    list_id: str = ""
    create_time_gte: datetime | None = None


@dataclass
class Errors:
    task_ids: list[int] = field(default_factory=list)
    error_code: int | None = None


def test_kinds_presence_and_times() -> None:
    msg = faces_pb2.FaceFilter(face_ids=["a", "b"], user_data="", list_id="l")
    msg.create_time_gte.FromDatetime(datetime(2024, 5, 1, 12, 0))
    got = dataclass_of(Faces, msg)
    assert got == Faces(("a", "b"), "", "l", datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    # An empty user_data that was set is a filter; one never set is none.
    assert dataclass_of(Faces, faces_pb2.FaceFilter()) == Faces()


def test_list_default_and_zero_that_was_set() -> None:
    got = dataclass_of(Errors, tasks_pb2.ErrorFilter(task_ids=[3, 1], error_code=0))
    assert got.task_ids == [3, 1] and isinstance(got.task_ids, list)
    assert got.error_code == 0
    assert dataclass_of(Errors, tasks_pb2.ErrorFilter()).error_code is None


def test_given_fields_and_a_field_the_proto_lacks() -> None:
    assert dataclass_of(Errors, tasks_pb2.ErrorFilter(), task_ids=[7]).task_ids == [7]

    @dataclass
    class Stray:
        no_such_field: str = ""

    with pytest.raises(KeyError):
        dataclass_of(Stray, tasks_pb2.ErrorFilter())


def test_message_of_is_the_way_back() -> None:
    from luna.events.v1 import handlers_pb2

    from services.common.pbjson import message_of

    @dataclass
    class Handler:
        handler_id: str
        policies: dict | None
        lambda_id: str | None
        create_time: datetime

    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    pb = message_of(handlers_pb2.Handler, Handler("h", {"a": {"b": 1}}, None, when))
    assert pb.handler_id == "h" and pb.lambda_id == ""
    assert pb.policies["a"]["b"] == 1 and pb.create_time.ToDatetime(tzinfo=UTC) == when
    assert not message_of(handlers_pb2.Handler, Handler("h", None, None, when)).HasField("policies")
    assert (
        message_of(handlers_pb2.Handler, Handler("h", None, "x", when), lambda_id="y").lambda_id
        == "y"
    )

"""services.common.luna_json: the LUNA JSON pieces the events pipeline shares with the gateway."""

from __future__ import annotations

from datetime import UTC, datetime

from luna.estimator.v1 import estimator_pb2 as epb

from services.common import luna_json


def test_estimations_keep_integer_fields() -> None:
    face = epb.Face()
    face.estimations.update({"basic_attributes": {"age": 31.0, "gender": 1.0, "gender_score": 0.9}})
    face.estimations.update({"liveness": {"prediction": 1.0, "estimations": {"score": 0.8}}})
    est = luna_json.estimations(face)
    assert est["basic_attributes"] == {"age": 31, "gender": 1, "gender_score": 0.9}
    assert est["liveness"]["prediction"] == 1 and isinstance(est["liveness"]["prediction"], int)


def test_face_candidates() -> None:
    fc = luna_json.face_candidates(
        {"list_id": "l", "face_ids": ["f"], "user_data": "u", "create_time__gte": "x"},
        limit=5,
        threshold=0.5,
        when=lambda _: datetime(2024, 5, 1, tzinfo=UTC),
    )
    assert (fc.list_id, list(fc.face_ids), fc.user_data, fc.limit) == ("l", ["f"], "u", 5)
    assert fc.threshold == 0.5 and fc.HasField("create_time_gte")
    assert not fc.HasField("create_time_lt")


def test_dig_and_messages() -> None:
    assert luna_json.dig({"a": {"b": 1}}, "a", "b") == 1
    assert luna_json.dig({"a": 3}, "a", "b") is None
    assert luna_json.type_message(["integer", "null"], "x") == "value is not a valid integer"
    assert luna_json.type_message("string", None) == "none is not an allowed value"
    assert luna_json.bound_message("maxLength", 36) == "ensure this value has at most 36 characters"
    assert luna_json.bound_message("pattern", "x") is None
    assert luna_json.enum_message(["faces", 1, None]) == (
        "value is not a valid enumeration member; permitted: 'faces', 1, None"
    )

"""The matcher's face-record cache without a network: LRU, visibility, stale reads refused."""

from __future__ import annotations

from luna.faces.v1 import faces_pb2

from services.matcher.face_records import FaceRecords


def face(face_id: str, account_id: str = "a", user_data: str = "") -> faces_pb2.Face:
    return faces_pb2.Face(face_id=face_id, account_id=account_id, user_data=user_data)


def test_lru_visibility_and_invalidation() -> None:
    records = FaceRecords(capacity=2)
    records.put_many([face("1"), face("2", "b")], records.generation)
    found, missing = records.get_many(["1", "2", "3"], "a")
    assert set(found) == {"1"} and missing == ["3"]  # "2" is b's: neither shown nor re-read
    found, _ = records.get_many(["2"], None)  # see_all
    assert set(found) == {"2"}
    records.put_many([face("3")], records.generation)  # evicts the least recent ("1")
    assert records.get_many(["1"], None) == ({}, ["1"])
    records.forget("3")
    assert records.get_many(["3"], None) == ({}, ["3"])
    records.clear()
    assert len(records) == 0


def test_a_read_that_raced_a_change_is_not_kept() -> None:
    records = FaceRecords(capacity=10)
    generation = records.generation  # a match starts reading face "1" ...
    records.forget("1")  # ... while its change is applied
    records.put_many([face("1", user_data="old")], generation)
    assert records.get_many(["1"], None) == ({}, ["1"])
    records.put_many([face("1", user_data="new")], records.generation)
    assert records.get_many(["1"], None)[0]["1"].user_data == "new"


def test_capacity_zero_disables() -> None:
    records = FaceRecords(capacity=0)
    records.put_many([face("1")], records.generation)
    assert len(records) == 0

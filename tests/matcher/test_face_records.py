"""The matcher's face records without a network: visibility, list deletion, stale reads
refused, and the snapshot round trip."""

from __future__ import annotations

from pathlib import Path

from luna.faces.v1 import faces_pb2

from services.matcher.face_records import FaceRecords


def face(
    face_id: str, account_id: str = "a", user_data: str = "", lists: tuple[str, ...] = ()
) -> faces_pb2.Face:
    return faces_pb2.Face(
        face_id=face_id, account_id=account_id, user_data=user_data, list_ids=lists
    )


def parsed(raw: bytes) -> faces_pb2.Face:
    return faces_pb2.Face.FromString(raw)


def test_visibility_and_forget() -> None:
    records = FaceRecords()
    records.set_many([face("1"), face("2", "b")])
    found, missing = records.get_many(["1", "2", "3"], "a")
    assert list(found) == ["1"] and missing == ["3"]
    assert parsed(found["1"]).face_id == "1"
    found, _ = records.get_many(["2"], None)  # see_all
    assert parsed(found["2"]).account_id == "b"
    records.set(face("1", user_data="new"))
    assert parsed(records.get_many(["1"], None)[0]["1"]).user_data == "new"
    records.forget("1")
    assert records.get_many(["1"], None) == ({}, ["1"])
    records.clear()
    assert len(records) == 0


def test_drop_list_rewrites_only_its_members() -> None:
    records = FaceRecords()
    records.set_many([face("1", lists=("L1", "L2")), face("2", lists=("L2",)), face("3")])
    records.drop_list("L2")
    got = {
        k: list(parsed(v).list_ids) for k, v in records.get_many(["1", "2", "3"], None)[0].items()
    }
    assert got == {"1": ["L1"], "2": [], "3": []}


def test_set_lists_changes_only_held_records_and_their_lists() -> None:
    records = FaceRecords()
    records.set_many([face("1", user_data="u", lists=("L1",)), face("2")])
    generation = records.generation
    records.set_lists([("1", ["L1", "L2"]), ("2", []), ("9", ["L2"])])
    found, missing = records.get_many(["1", "2", "9"], None)
    assert missing == ["9"]  # not held: read once later, as any missing record
    assert (list(parsed(found["1"]).list_ids), parsed(found["1"]).user_data) == (["L1", "L2"], "u")
    assert list(parsed(found["2"]).list_ids) == []
    assert records.generation > generation  # reads that started before are not kept


def test_a_read_older_than_a_change_is_not_kept() -> None:
    records = FaceRecords()
    generation = records.generation  # a match starts reading face "1" ...
    records.forget("1")  # ... while its change is applied
    records.put_many([face("1", user_data="old")], generation)
    assert records.get_many(["1"], None) == ({}, ["1"])
    records.put_many([face("1", user_data="new")], records.generation)
    assert parsed(records.get_many(["1"], None)[0]["1"]).user_data == "new"


def test_disabled_keeps_nothing() -> None:
    records = FaceRecords(capacity=0)
    records.put_many([face("1")], records.generation)
    records.set(face("2"))
    assert len(records) == 0


def test_snapshot_round_trip(tmp_path: Path) -> None:
    records = FaceRecords()
    records.set_many([face("1", "a", "u1", ("L",)), face("2", "b", "u2")])
    records.save(tmp_path)
    again = FaceRecords()
    assert again.load(tmp_path)
    found, missing = again.get_many(["1", "2"], None)
    assert missing == []
    assert parsed(found["1"]) == face("1", "a", "u1", ("L",))
    assert parsed(found["2"]) == face("2", "b", "u2")
    assert again.get_many(["2"], "a") == ({}, [])
    assert not FaceRecords().load(tmp_path / "missing")


def test_loaded_records_follow_every_change_and_save_again(tmp_path: Path) -> None:
    """Records loaded from a snapshot stay in its blob until changed: every change kind
    applies to them as to records set live, and a later snapshot holds the result."""
    before = FaceRecords()
    before.set_many(
        [
            face("1", lists=("L1", "L2")),
            face("2", "b", lists=("L2",)),
            face("3", user_data="u3"),
            face("4", lists=("L1",)),
            face("5", user_data="L2-lookalike"),
        ]
    )
    before.save(tmp_path)
    records = FaceRecords()
    assert records.load(tmp_path) and len(records) == 5
    found, _ = records.get_many(["1", "2", "3"], "a")
    assert sorted(found) == ["1", "3"] and parsed(found["3"]).user_data == "u3"
    records.drop_list("L2")
    records.set_lists([("4", ["L1", "L3"])])
    records.set(face("3", user_data="new"))
    records.forget("1")
    got = {k: parsed(v) for k, v in records.get_many(["1", "2", "3", "4", "5"], None)[0].items()}
    assert sorted(got) == ["2", "3", "4", "5"] and len(records) == 4
    assert list(got["2"].list_ids) == [] and got["2"].account_id == "b"
    assert got["3"].user_data == "new"
    assert list(got["4"].list_ids) == ["L1", "L3"]
    assert got["5"].user_data == "L2-lookalike"  # its bytes hold the needle, not the list
    again = tmp_path / "again"
    again.mkdir()
    records.save(again)
    reloaded = FaceRecords()
    assert reloaded.load(again) and len(reloaded) == 4
    assert {k: parsed(v) for k, v in reloaded.get_many(list(got), None)[0].items()} == got
    reloaded.clear()
    assert len(reloaded) == 0 and reloaded.get_many(["2"], None) == ({}, ["2"])

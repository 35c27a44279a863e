"""Pure helpers of the faces service: descriptor checks, SQL filters, change messages."""

from __future__ import annotations

import numpy as np
import pytest
from luna.faces.v1 import changes_pb2

from services.common import errors, scoping
from services.common.scoping import Scope
from services.faces import outbox
from services.faces.descriptors import BasicAttributes, checked, normalise
from services.faces.faces import FaceFilter, face_where
from services.faces.lists import ListFilter, list_where

K = changes_pb2.FaceChange.Kind
A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"


def test_normalise_scales_to_unit_length_little_endian() -> None:
    raw = np.array([3.0, 4.0], dtype="<f4").tobytes()
    assert np.allclose(np.frombuffer(normalise(raw), "<f4"), [0.6, 0.8])
    for bad in (b"", b"\x00" * 5, np.zeros(4, "<f4").tobytes(), b"\x00" * (4097 * 4)):
        with pytest.raises(errors.LunaError):
            normalise(bad)


def test_checked_validates_everything_it_is_given() -> None:
    vec = np.ones(4, "<f4").tobytes()
    data = checked([(vec, 200)], [A], BasicAttributes(1, 0, 4), [A, B])
    assert data.samples == [A, B]
    for args in (
        ([(vec, 0)], [], None, []),
        ([(vec, 200)], ["nope"], None, []),
        ([(vec, 200)], [A, A], None, []),
        ([], [], BasicAttributes(101, 0, 1), []),
        ([], [], BasicAttributes(1, 2, 1), []),
        ([], [], BasicAttributes(1, 0, 5), []),
    ):
        with pytest.raises(errors.LunaError) as info:
            checked(*args)  # type: ignore[arg-type]
        assert info.value.code == 12022


def test_scopes_and_filters_build_parameterised_sql() -> None:
    assert scoping.readable(Scope(A)) == ("account_id = %s", (A,))
    assert scoping.readable(Scope(A, True)) == ("TRUE", ())
    assert scoping.readable(Scope(A, True, B), "f.account_id") == ("f.account_id = %s", (B,))
    sql, params = face_where(Scope(A), FaceFilter(user_data="50%_off", list_id=B))
    assert "ILIKE" in sql and params == [A, "%50\\%\\_off%", B]
    with pytest.raises(errors.LunaError) as info:
        face_where(Scope(A), FaceFilter(face_id_gte="x"))
    assert info.value.code == 12012
    sql, params = list_where(Scope(A), ListFilter(user_data_eq="x", list_ids=(A, A)))
    assert params == [A, [A], "x"]
    assert scoping.page_bounds(3, 20) == (20, 40)
    assert scoping.page_bounds(0, 0) == (10, 0)


def test_upserts_cover_removed_and_new_versions() -> None:
    got = outbox.upserts(A, B, {200: b"\x01" * 8}, [A], removed_versions=[59, 200])
    assert [(c.kind, c.descriptor_version, c.descriptor) for c in got] == [
        (K.KIND_UPSERT_FACE, 59, b""),
        (K.KIND_UPSERT_FACE, 200, b"\x01" * 8),
    ]
    (none,) = outbox.upserts(A, B, {}, [])
    assert (none.descriptor_version, none.descriptor) == (0, b"")
    assert outbox.subject_for(A) == f"luna.faces.changes.{A}"

"""A matched face in an event's candidates reads as the same face does in /6/faces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from luna.faces.v1 import faces_pb2

from services.common import times
from services.events.pipeline.render import face_json
from services.gateway import convert


@pytest.mark.parametrize("external_id", ["", "astro"])
def test_a_candidate_face_renders_as_the_faces_api_does(external_id: str) -> None:
    face = faces_pb2.Face(
        face_id="5c6a9e2e-2d1b-4c3e-9d3f-1f6f0c1b2a3d",
        account_id="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        user_data="door 3",
        external_id=external_id,
        list_ids=["11111111-2222-4333-8444-555555555555"],
        create_time=times.to_timestamp(datetime(2026, 12, 7, 19, 0, 1, tzinfo=UTC)),
    )
    candidate = face_json(face)
    assert candidate["external_id"] == external_id  # "" when unset, as LUNA's default
    assert candidate["event_id"] is None
    assert candidate == convert.face_json(face, None)

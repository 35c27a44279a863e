"""A face names only events of its own account; the faces core asks the events service (here a
recording stand-in for its lookup), never the events tables."""

from __future__ import annotations

import uuid

import pytest

from services.common.errors import LunaError
from services.faces.faces import FaceFilter, Faces

from .conftest import World


async def test_face_event_must_belong_to_the_account(world: World) -> None:
    own_event, foreign_event = str(uuid.uuid4()), str(uuid.uuid4())
    events = {(world.a.account_id, own_event), (world.b.account_id, foreign_event)}
    asked: list[tuple[str, str]] = []

    async def exists(account_id: str, event_id: str) -> bool:
        asked.append((account_id, event_id))
        return (account_id, event_id) in events

    faces = Faces(world.pool, world.publisher, exists)
    face = await faces.create(world.a, event_id=own_event)
    assert face.event_id == own_event
    for event_id in (foreign_event, str(uuid.uuid4())):
        with pytest.raises(LunaError) as err:
            await faces.create(world.a, event_id=event_id)
        assert err.value.code == 23001 and err.value.http_status == 404
        with pytest.raises(LunaError) as err:
            await faces.update(world.a, face.face_id, event_id=event_id)
        assert err.value.code == 23001
    assert (await faces.get(world.a, face.face_id)).event_id == own_event
    assert await faces.count(world.a, FaceFilter()) == 1  # nothing half-written
    # Clearing needs no lookup; an event the caller is saving right now is not looked up.
    asked.clear()
    await faces.update(world.a, face.face_id, event_id="")
    pending = str(uuid.uuid4())
    made = await faces.create(world.a, event_id=pending, event_pending=True)
    assert made.event_id == pending and asked == []

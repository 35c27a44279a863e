"""JetStream streams of the platform: retention, idempotent creation, dedupe, work queue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.errors import NoServersError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError

from services.common.nats_streams import (
    connect,
    ensure_streams,
    publish,
    stream_configs,
    work_consumer_config,
)
from services.launcher.embedded import EmbeddedNats, pick_free_port

DAY = 24 * 3600


async def test_streams_have_the_declared_retention(js: JetStreamContext) -> None:
    await ensure_streams(js)
    faces = (await js.stream_info("FACES_CHANGES")).config
    assert faces.subjects == ["luna.faces.changes.>"]
    assert faces.retention == RetentionPolicy.LIMITS
    assert faces.storage == StorageType.FILE
    assert faces.max_age == pytest.approx(7 * DAY)
    assert faces.duplicate_window == pytest.approx(120)

    events = (await js.stream_info("EVENTS")).config
    assert events.subjects == ["luna.events.>"]
    assert events.retention == RetentionPolicy.LIMITS
    assert events.max_age == pytest.approx(1 * DAY)

    work = (await js.stream_info("TASKS_WORK")).config
    assert work.subjects == ["luna.tasks.work.>"]
    assert work.retention == RetentionPolicy.WORK_QUEUE
    assert work.storage == StorageType.FILE


async def test_ensure_streams_is_idempotent_and_repairs_drift(js: JetStreamContext) -> None:
    await ensure_streams(js)
    await js.publish("luna.events.x", b"kept")
    before = await js.stream_info("EVENTS")
    await ensure_streams(js)  # second service start: nothing changes, nothing is lost
    again = await js.stream_info("EVENTS")
    assert again.created == before.created
    assert again.state.messages == before.state.messages >= 1

    drifted = before.config
    drifted.max_age = 3600.0
    await js.update_stream(drifted)
    await ensure_streams(js)
    assert (await js.stream_info("EVENTS")).config.max_age == pytest.approx(DAY)


async def test_ensure_streams_refuses_an_immutable_mismatch(js: JetStreamContext) -> None:
    await ensure_streams(js)
    await js.delete_stream("EVENTS")
    await js.add_stream(
        StreamConfig(name="EVENTS", subjects=["luna.events.>"], storage=StorageType.MEMORY)
    )
    try:
        with pytest.raises(RuntimeError, match="storage"):
            await ensure_streams(js)
    finally:
        await js.delete_stream("EVENTS")
        await ensure_streams(js)


async def test_publish_dedupes_on_msg_id(js: JetStreamContext) -> None:
    await ensure_streams(js)
    first = await publish(js, "luna.faces.changes.created", b"face-1", msg_id="change-1")
    retry = await publish(js, "luna.faces.changes.created", b"face-1", msg_id="change-1")
    other = await publish(js, "luna.faces.changes.created", b"face-2", msg_id="change-2")
    assert retry == first  # the server dropped the retry and answered the original sequence
    assert other == first + 1


async def test_work_queue_removes_acked_messages(js: JetStreamContext) -> None:
    await ensure_streams(js)
    await js.add_consumer("TASKS_WORK", work_consumer_config("workers", "luna.tasks.work.>"))
    for i in range(3):
        await publish(js, f"luna.tasks.work.sub{i}", b"job", msg_id=f"job-{i}")
    sub = await js.pull_subscribe_bind("workers", stream="TASKS_WORK")
    msgs = await sub.fetch(3, timeout=5)
    assert sorted(m.subject for m in msgs) == [f"luna.tasks.work.sub{i}" for i in range(3)]
    for m in msgs:
        await m.ack_sync()
    assert (await js.stream_info("TASKS_WORK")).state.messages == 0
    consumer = await js.consumer_info("TASKS_WORK", "workers")
    assert consumer.config.ack_policy == AckPolicy.EXPLICIT
    await js.delete_consumer("TASKS_WORK", "workers")


async def test_connect_fails_on_a_dead_url_but_survives_a_restart(
    tmp_path: Path, stop_after: Callable[[Any], Any]
) -> None:
    dead = pick_free_port()
    with pytest.raises(NoServersError):
        await connect(f"nats://127.0.0.1:{dead}", initial_attempts=2)

    server = stop_after(EmbeddedNats(tmp_path))
    nc = await connect(await server.start())
    try:
        port = server.port
        await server.stop()
        await server.start()  # same recorded port: the client reconnects by itself
        assert server.port == port
        js = nc.jetstream()
        await ensure_streams(js)
        assert await publish(js, "luna.events.after", b"x", msg_id="after-restart") >= 1
        assert nc.stats["reconnects"] >= 1
    finally:
        try:
            await nc.close()
        finally:  # the server must not outlive the test even if close() fails
            await server.stop()


async def test_streams_take_the_configured_replica_count(
    js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUNA_NATS_REPLICAS", "1")
    await ensure_streams(js)
    for name in ("FACES_CHANGES", "EVENTS", "TASKS_WORK"):
        info = await js.stream_info(name)
        assert info.config.num_replicas == 1
        assert info.cluster is None or len(info.cluster.replicas or []) == 0

    # The cluster overlay's value reaches the server's stream request: one nats-server refuses
    # it (a 3-node cluster test is a later item), so nothing is created or changed silently.
    monkeypatch.setenv("LUNA_NATS_REPLICAS", "3")
    assert {c.num_replicas for c in stream_configs()} == {3}
    with pytest.raises(APIError, match=r"(?i)replica"):
        await ensure_streams(js)
    assert (await js.stream_info("EVENTS")).config.num_replicas == 1

    monkeypatch.setenv("LUNA_NATS_REPLICAS", "0")
    with pytest.raises(ValueError, match="LUNA_NATS_REPLICAS"):
        stream_configs()

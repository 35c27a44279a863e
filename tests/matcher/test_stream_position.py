"""The read-your-writes position through a NATS node's loss: a client that knows other
nodes retries on the one it reconnects to; a lone server's outage answers None at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nats.errors
import nats.js.errors
import orjson
import pytest
from luna.faces.v1 import changes_pb2

from services.common import nats_streams, subjects
from services.launcher.testing import running_nats
from services.matcher import position, settings, sync


class FakeNats:
    """Just what `sync.read_position` touches of a nats-py client: connection state, known
    servers, and STREAM.INFO requests that fail until the client is back."""

    def __init__(self, servers: int, fail_first: int, last_seq: int = 42) -> None:
        self.servers = [f"nats://127.0.0.1:{4222 + i}" for i in range(servers)]
        self.is_connected = False
        self.fail_first = fail_first
        self.requests = 0
        self.last_seq = last_seq

    async def request(self, subject: str, payload: bytes, timeout: float) -> Any:
        self.requests += 1
        if self.requests <= self.fail_first:
            raise nats.errors.ConnectionReconnectingError
        return SimpleNamespace(data=orjson.dumps({"state": {"last_seq": self.last_seq}}))


def js_of(nc: FakeNats) -> Any:
    return SimpleNamespace(_nc=nc, _prefix="$JS.API")


async def test_in_a_cluster_the_read_waits_for_the_reconnect_and_finds_the_position() -> None:
    nc = FakeNats(servers=3, fail_first=2)
    pending = sync.read_position(js_of(nc), timeout=2.0)
    assert pending is not None  # disconnected, but other nodes are known: not "NATS is away"
    nc.is_connected = True  # the client reconnected to another node
    assert await pending == 42
    assert nc.requests == 3  # two failed while the node was lost, then the answer


async def test_in_a_cluster_a_read_that_never_recovers_gives_up_at_its_timeout() -> None:
    nc = FakeNats(servers=3, fail_first=10**6)
    nc.is_connected = True
    pending = sync.read_position(js_of(nc), timeout=0.3)
    assert pending is not None
    assert await pending is None  # answered from applied state, as with a lone server
    assert nc.requests > 1


async def test_a_lone_server_that_is_away_answers_from_applied_state_at_once() -> None:
    nc = FakeNats(servers=1, fail_first=0)
    assert sync.read_position(js_of(nc), timeout=2.0) is None
    nc.is_connected = True
    nc.fail_first = 1
    pending = sync.read_position(js_of(nc), timeout=2.0)
    assert pending is not None and await pending is None and nc.requests == 1


# --- the usual form: PositionReads over a live connection ------------------------------------
@pytest.fixture
async def live_js(tmp_path: Path) -> AsyncIterator[Any]:
    async with running_nats(tmp_path / "nats") as server:
        nc = await nats_streams.connect(server.url, name="position-test")
        js = nc.jetstream()
        await nats_streams.ensure_streams(js)
        yield js
        await nc.close()


async def test_the_position_is_read_without_nats_py_requests_once_reads_are_open(
    live_js: Any,
) -> None:
    js = live_js
    for i in range(3):
        await js.publish(f"{subjects.FACES_CHANGES_PREFIX}.test", str(i).encode())
    await position.open_position_reads(js)
    await position.open_position_reads(js)  # once per connection: a second Sync shares it

    async def no_request(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the usual read went through nats-py's request")

    real_request, js._nc.request = js._nc.request, no_request
    try:
        for _ in range(3):
            pending = sync.read_position(js, timeout=2.0)
            assert pending is not None
            assert await pending == 3
    finally:
        js._nc.request = real_request
    assert (await js.stream_info("FACES_CHANGES")).state.last_seq == 3


async def test_an_error_answer_is_raised_typed_as_before(live_js: Any) -> None:
    js = live_js
    await position.open_position_reads(js)
    await js.delete_stream("FACES_CHANGES")
    pending = sync.read_position(js, timeout=2.0)
    assert pending is not None
    with pytest.raises(nats.js.errors.NotFoundError):
        await pending


class SilentTransport:
    """A connection whose requests never reach a server."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class QuietNats(FakeNats):
    """FakeNats with the transport and subscription calls PositionReads uses."""

    def __init__(self) -> None:
        super().__init__(servers=1, fail_first=0, last_seq=7)
        self.is_connected = True
        self._transport = SilentTransport()
        self.callbacks: list[Any] = []

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, cb: Any) -> None:
        self.callbacks.append(cb)

    async def flush(self) -> None:
        pass


async def test_an_unanswered_read_asks_the_general_way_and_late_answers_resolve_nothing() -> None:
    nc = QuietNats()
    js = js_of(nc)
    await position.open_position_reads(js)
    pending = sync.read_position(js, timeout=0.2)
    assert pending is not None
    sent = nc._transport.written[0]
    assert sent.startswith(b"PUB $JS.API.STREAM.INFO.FACES_CHANGES _INBOX.test.")
    assert await pending == 7  # after the quiet read's timeout, through nc.request
    assert nc.requests == 1
    # the late answer to that read, and an answer to nothing, change nothing
    reply = sent.split()[2].decode()
    state = orjson.dumps({"state": {"last_seq": 1}})
    for subject in (reply, "_INBOX.test.999"):
        await nc.callbacks[0](SimpleNamespace(subject=subject, data=state))
    second = sync.read_position(js, timeout=2.0)
    assert second is not None
    reply = nc._transport.written[1].split()[2].decode()
    await nc.callbacks[0](SimpleNamespace(subject=reply, data=orjson.dumps({"state": {}})))
    assert await second == 0  # an empty stream's state has no last_seq


async def test_a_read_lost_with_its_node_is_asked_again_within_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a cluster, the usual read whose node is lost (its answer never comes) is given up
    after one attempt's time, not the whole wait: the wait's remainder retries on the node
    the client reconnects to (the general path) and finds the position."""
    monkeypatch.setattr(position, "_ATTEMPT_S", 0.1)
    nc = QuietNats()
    nc.servers.extend(["nats://127.0.0.1:4223", "nats://127.0.0.1:4224"])
    nc.fail_first = 2  # the client is still reconnecting for the first two retries
    js = js_of(nc)
    await position.open_position_reads(js)
    pending = sync.read_position(js, timeout=1.0)
    assert pending is not None
    assert await pending == 7
    assert nc.requests == 3


class FlakyJetStream:
    """Consumer creation that times out (no stream leader yet) `fail_first` times."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.calls = 0

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise nats.errors.TimeoutError
        return SimpleNamespace(next_msg=self._idle, unsubscribe=self._none)

    async def _idle(self, timeout: float) -> Any:
        raise TimeoutError

    async def _none(self) -> None:
        return None


async def test_resuming_the_follower_after_a_node_loss_uses_its_own_quick_context(
    tmp_path: Path,
) -> None:
    usual, quick = FlakyJetStream(0), FlakyJetStream(fail_first=3)
    s = sync.Sync(
        usual,  # type: ignore[arg-type]
        None,
        snapshot_root=tmp_path,
        version=settings.DESCRIPTOR_VERSION.get_int(),
        config=settings.core_config(),
        resume_js=quick,  # type: ignore[arg-type]
    )
    s.applied_seq = 7
    await s.resume_follow()
    try:
        assert (quick.calls, usual.calls) == (4, 0)  # 3 timeouts during the election, then on
        assert s._sub is not None and s._follow_task is not None
    finally:
        await s._stop_follow()


class ElectingJetStream(FlakyJetStream):
    """No consumer while the metadata leader is elected, but the stream's leader answers
    its position and single gets (STREAM.INFO, STREAM.MSG.GET)."""

    def __init__(self, fail_first: int, changes: list[bytes]) -> None:
        super().__init__(fail_first)
        self.changes = changes
        self.gets: list[int] = []
        self._prefix = "$JS.API"
        self._nc = self

    async def request(self, subject: str, payload: bytes, timeout: float) -> Any:
        assert subject.endswith(".STREAM.INFO.FACES_CHANGES")
        return SimpleNamespace(data=orjson.dumps({"state": {"last_seq": len(self.changes)}}))

    async def get_msg(self, stream: str, seq: int) -> Any:
        self.gets.append(seq)
        if seq == 2:
            raise nats.js.errors.NotFoundError  # removed by the stream's limits
        return SimpleNamespace(data=self.changes[seq - 1])


async def test_while_no_consumer_can_be_made_the_follower_catches_up_by_single_gets(
    tmp_path: Path,
) -> None:
    deleted = changes_pb2.FaceChange(
        kind=changes_pb2.FaceChange.KIND_ATTRIBUTE_DELETE,
        attribute_id="00000000-0000-4000-8000-000000000001",
        account_id="00000000-0000-4000-8000-0000000000aa",
    ).SerializeToString()
    quick = ElectingJetStream(fail_first=2, changes=[deleted, b"", deleted])
    s = sync.Sync(
        FlakyJetStream(0),  # type: ignore[arg-type]
        None,
        snapshot_root=tmp_path,
        version=settings.DESCRIPTOR_VERSION.get_int(),
        config=settings.core_config(),
        resume_js=quick,  # type: ignore[arg-type]
    )
    await s.resume_follow()
    try:
        # Caught up during the first failed attempt (1, gone 2, 3), nothing read twice after.
        assert quick.gets == [1, 2, 3]
        assert s.applied_seq == 3
        assert quick.calls == 3  # and following again once a consumer could be made
    finally:
        await s._stop_follow()


async def test_a_follower_with_a_backlog_stops_when_asked(live_js: Any, tmp_path: Path) -> None:
    """A rebuild (a shard taking its new partition) stops the follower first. With messages
    buffered, nats-py's next_msg drops a cancellation (Python 3.11's wait_for), so a follower
    stopped by `cancel(); await` alone read on and the rebuild waited for it forever (the
    shard-removal test hung this way under load)."""
    js = live_js
    change = changes_pb2.FaceChange(
        kind=changes_pb2.FaceChange.KIND_ATTRIBUTE_DELETE,
        attribute_id="00000000-0000-4000-8000-000000000001",
        account_id="00000000-0000-4000-8000-0000000000aa",
    ).SerializeToString()
    for _ in range(30_000):  # core publishes into the stream: a backlog in well under a second
        await js._nc.publish(f"{subjects.FACES_CHANGES_PREFIX}.test", change)
    await js._nc.flush()
    s = sync.Sync(
        js,
        None,  # type: ignore[arg-type]
        snapshot_root=tmp_path,
        version=settings.DESCRIPTOR_VERSION.get_int(),
        config=settings.core_config(),
    )
    stops = 0
    while s.applied_seq < 25_000 and stops < 20:
        await s._start_follow()
        await s.wait_for(1_000 * (stops + 1), timeout=5)
        task = s._follow_task
        assert task is not None
        await asyncio.wait_for(s._stop_follow(), 5)
        assert task.done() and s._follow_task is None
        at = s.applied_seq
        await asyncio.sleep(0.05)
        assert s.applied_seq == at  # nothing applied after the stop
        stops += 1
    assert stops >= 5

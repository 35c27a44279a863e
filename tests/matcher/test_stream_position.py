"""The read-your-writes position through a NATS node's loss: a client that knows other
nodes retries on the one it reconnects to; a lone server's outage answers None at once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import nats.errors
import orjson

from services.matcher import sync


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

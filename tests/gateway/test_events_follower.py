"""The Sender's EVENTS follower rides through a NATS restart (issue 9, defect 2): it delivers
new events right after the restart and never replays the stream's old ones."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from services.common import nats_streams
from services.gateway.events_follower import refollow_on_reconnect
from services.gateway.sender import Hub
from services.launcher.embedded import EmbeddedNats


class _Recording(Hub):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bytes] = []

    def dispatch(self, subject: str, data: bytes, request_id: str) -> int:
        self.seen.append(data)
        return 0


async def test_follower_resumes_from_now_after_a_nats_restart(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    await server.start()
    nc = await nats_streams.connect(server.url, name="follower-test")
    try:
        js = nc.jetstream()
        await nats_streams.ensure_streams(js)
        for i in range(5):
            await js.publish("luna.events.acc.handler", b"old-%d" % i)
        hub = _Recording()
        refollow_on_reconnect(hub, nc)
        await hub.follow(js)
        await asyncio.sleep(0.5)
        assert hub.seen == []  # from now on only

        os.kill(server.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        await server.restart()
        deadline = time.monotonic() + 10
        n = 0
        while not hub.seen and time.monotonic() < deadline:
            n += 1
            try:
                await js.publish("luna.events.acc.handler", b"new-%d" % n, timeout=1)
            except Exception:  # still reconnecting
                pass
            await asyncio.sleep(0.3)
        assert hub.seen, "no event delivered within 10 s of the restart"
        await asyncio.sleep(1.0)
        assert all(m.startswith(b"new-") for m in hub.seen), hub.seen
    finally:
        await nc.close()
        await server.stop()

"""The cluster overlay's NATS config, run for real: three nats-server processes on loopback
with the overlay's nats.conf (host names and paths swapped for local ones), the platform's
streams created with LUNA_NATS_REPLICAS=3, and a publish acknowledged after one server is
killed. (The full failover suite with every service is issue #15 item 5.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploytest import find, render
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from services.common.nats_streams import connect, ensure_streams, publish, stream_configs
from services.launcher.embedded import nats_server_binary, pick_free_port

SERVERS = 3
pytestmark = pytest.mark.slow


@dataclass
class Server:
    name: str
    client_port: int
    process: asyncio.subprocess.Process


def local_config(conf: str, index: int, routes: list[int], client: int, tmp: Path) -> str:
    out = conf.replace("  port: 6222", f"  listen: 127.0.0.1:{routes[index]}")
    out = out.replace("\nport: 4222", f"\nhost: 127.0.0.1\nport: {client}")
    out = out.replace("http_port: 8222", f"http_port: {pick_free_port()}")
    out = out.replace("/var/run/nats/nats.pid", str(tmp / "nats.pid"))
    out = out.replace("/data/jetstream", str(tmp / "jetstream"))
    out = re.sub(
        r"nats://nats-(\d+)\.nats-headless:6222",
        lambda m: f"nats://127.0.0.1:{routes[int(m[1])]}",
        out,
    )
    assert "nats-headless" not in out and "/data" not in out and "/var/run" not in out
    return out


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[Server]]:
    conf = find(render("cluster"), "ConfigMap", "nats-config")["data"]["nats.conf"]
    routes = [pick_free_port() for _ in range(SERVERS)]
    servers: list[Server] = []
    try:
        for i in range(SERVERS):
            home = tmp_path / f"nats-{i}"
            home.mkdir()
            client = pick_free_port()
            path = home / "nats.conf"
            path.write_text(local_config(conf, i, routes, client, home))
            log = (home / "server.log").open("wb")
            process = await asyncio.create_subprocess_exec(
                str(nats_server_binary()),
                "-c",
                str(path),
                env={**os.environ, "SERVER_NAME": f"nats-{i}"},
                stdout=log,
                stderr=log,
            )
            servers.append(Server(f"nats-{i}", client, process))
        yield servers
    finally:
        for server in servers:
            if server.process.returncode is None:
                server.process.kill()
                await server.process.wait()


async def jetstream_ready(nc: NATS, timeout: float = 60.0) -> None:
    """Until the cluster has elected its JetStream meta leader."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.account_info()
            return
        except (APIError, ServiceUnavailableError, NoStreamResponseError, NatsTimeout):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)


async def peers(nc: NATS, stream: str, timeout: float = 60.0) -> set[str]:
    """The servers holding a current copy of `stream`, once every added replica caught up."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    while True:
        cluster = (await js.stream_info(stream)).cluster
        found: set[str] = set()
        if cluster is not None and cluster.leader:
            found = {cluster.leader} | {r.name for r in cluster.replicas or [] if r.current}
        if len(found) == SERVERS or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.25)


async def test_streams_are_replicated_and_survive_a_lost_server(
    cluster: list[Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    nc = await connect(f"nats://127.0.0.1:{cluster[0].client_port}", initial_attempts=20)
    try:
        await jetstream_ready(nc)
        js = nc.jetstream()
        # A deployment that grew from one server: streams exist with one replica first.
        monkeypatch.setenv("LUNA_NATS_REPLICAS", "1")
        await ensure_streams(js)
        monkeypatch.setenv("LUNA_NATS_REPLICAS", "3")
        await ensure_streams(js)  # the overlay's value: updated in place
        for want in stream_configs():
            assert (await js.stream_info(want.name or "")).config.num_replicas == SERVERS
            found = await peers(nc, want.name or "")
            assert found == {s.name for s in cluster}, (want.name, found)

        first = await publish(js, "luna.faces.changes.created", b"before", msg_id="before")
        victim = cluster[-1]  # not the server this client talks to
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()

        started = time.monotonic()
        while True:  # a leader on the lost server is re-elected within seconds
            try:
                seq = await publish(js, "luna.faces.changes.created", b"after", msg_id="after")
                break
            except (APIError, ServiceUnavailableError, NoStreamResponseError, NatsTimeout):
                # Raft elections take seconds; a loaded 2-core test machine stretches them.
                assert time.monotonic() - started < 60, "no quorum after losing one server"
                await asyncio.sleep(0.25)
        assert seq == first + 1
        info = await js.stream_info("FACES_CHANGES")
        assert info.state.messages >= 2
    finally:
        with contextlib.suppress(Exception):
            await nc.close()

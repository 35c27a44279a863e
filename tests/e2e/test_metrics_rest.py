"""Prometheus metrics of a running platform: LUNA's request metrics on the REST and Sender
listeners (route templates as path labels), each gRPC service's own endpoint, `luna status`."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
import uuid

import aiohttp
import pytest
from lunatest import create_account
from PIL import Image
from skimage import data

from services.common.metrics import parse

pytestmark = pytest.mark.e2e
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


async def _scrape(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url) as resp:
        text = await resp.text()
        assert resp.status == 200, text
        assert resp.headers["Content-Type"].startswith("text/plain")
    return parse(text)


def _value(samples: dict, name: str, **labels: str) -> float:
    return sum(
        v for got, v in samples.get(name, ()) if all(got.get(k) == w for k, w in labels.items())
    )


async def test_rest_metrics_use_route_templates(platform, http: aiohttp.ClientSession) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    before = await _scrape(http, f"{url}/metrics")
    for _ in range(3):
        async with http.get(f"{url}/6/faces/{uuid.uuid4()}", headers=auth) as resp:
            assert resp.status == 404
    async with http.get(f"{url}/healthcheck") as resp:
        assert resp.status == 200
    async with http.get(f"{url}/6/no/such/{uuid.uuid4()}") as resp:
        assert resp.status == 404
    after = await _scrape(http, f"{url}/metrics")
    face = "GET:/6/faces/{face_id}"

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("request_count_total", path=face, status_code="404") == 3
    assert grew("errors_count_total", path=face, error_code="22002") == 3
    assert grew("request_count_total", path="GET:/healthcheck", status_code="200") == 1
    assert grew("requests_count", path="GET:/healthcheck", status_code="200") == 1
    assert grew("errors_count_total", path="GET:unmatched", error_code="12013") == 1
    # no series per concrete URL: the ids never appear as labels
    paths = {labels["path"] for labels, _ in after["request_count_total"]}
    assert not any(UUID_RE.search(p) for p in paths), paths
    buckets = [labels["le"] for labels, _ in after["requests_bucket"] if labels["path"] == face]
    assert "0.0001" in buckets and "10.0" in buckets and "+Inf" in buckets
    assert _value(after, "jetstream_consumer_pending_messages", stream="EVENTS") >= 0


async def test_sender_listener_has_its_own_metrics(platform, http: aiohttp.ClientSession) -> None:
    sender = platform.runtime["sender_url"]
    assert platform.runtime["metrics"]["sender"] == f"{sender}/metrics"
    async with http.get(f"{sender}/2/version") as resp:
        assert resp.status == 200
    got = await _scrape(http, f"{sender}/metrics")
    assert _value(got, "request_count_total", path="GET:/2/version", status_code="200") >= 1
    assert not any(p["path"].startswith("GET:/6/") for p, _ in got["request_count_total"])


async def test_each_grpc_service_exposes_its_own(platform, http: aiohttp.ClientSession) -> None:
    urls = platform.runtime["metrics"]
    url = platform.url
    _, auth = await create_account(http, url)
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG")
    async with http.post(
        f"{url}/6/detector", data=buf.getvalue(), headers={**auth, "Content-Type": "image/jpeg"}
    ) as resp:
        assert resp.status == 201, await resp.text()
    async with http.post(f"{url}/6/lists", json={}, headers=auth) as resp:
        assert resp.status == 201
    await asyncio.sleep(0.2)
    grpc_services = ("faces", "events", "estimator", "matcher", "tasks")
    scraped = {name: await _scrape(http, urls[name]) for name in grpc_services}
    assert len({urls[name] for name in grpc_services}) == len(grpc_services)
    for name, samples in scraped.items():
        assert _value(samples, "grpc_server_handled_total") > 0, name
        assert _value(samples, "process_resident_memory_bytes") > 0, name
    faces = scraped["faces"]
    create = "/luna.faces.v1.ListsService/CreateList"
    assert _value(faces, "grpc_server_handled_total", grpc_method=create, grpc_code="OK") >= 1
    assert _value(faces, "grpc_server_handling_seconds_count", grpc_method=create) >= 1
    est = scraped["estimator"]
    assert _value(est, "estimator_batch_size_count") >= 1
    assert _value(est, "estimator_inference_seconds_sum") > 0
    matcher = scraped["matcher"]
    assert _value(matcher, "matcher_faces") >= 0 and "matcher_collections" in matcher
    lag = matcher["jetstream_consumer_pending_messages"]
    assert [labels["stream"] for labels, _ in lag] == ["FACES_CHANGES"]
    assert all(v >= 0 for _, v in lag)


async def test_luna_status_prints_the_main_figures(platform) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env["LUNA_DATA_DIR"] = str(platform.data_dir)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "status", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "metrics:" in text and f"{platform.runtime['sender_url']}/2/ws" in text
    lines = {
        line.split()[0]: line
        for line in text.splitlines()[text.splitlines().index("metrics:") :]
        if line.startswith("  ")
    }
    assert "requests=" in lines["gateway"] and "rpcs=" in lines["faces"]
    assert "faces=" in lines["matcher"] and "lag[FACES_CHANGES]=" in lines["matcher"]

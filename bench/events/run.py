"""Generate-events throughput: a handler doing detect + descriptor + match against a large list
+ store event, at concurrency 1 and 8, next to its components measured in the same run.

    .venv/bin/python -m bench.events.run [--faces 100000] [--seconds 20]

Population: 100k faces through REST is slow (each request authenticates and validates JSON),
so the faces are created over the faces gRPC API (CreateFace with the descriptor given as
attribute data and the list to link, 64 calls in flight). Descriptors are the clustered
synthetic identities of bench/matcher/data.py (shaped like SFace's, not uniform noise), so
the HNSW search costs what it costs on real galleries; the probe's real descriptor has no
true match among them, and matching cost does not depend on that. The matcher indexes them
from the faces change stream; the run waits until its index holds every face.

Components (each alone, concurrency 1, same platform, same image): EstimatorService.Detect
with face_descriptor, MatcherService.MatchFaces of that descriptor against the list,
EventsService.SaveEvents of an event like the pipeline builds. Their p50 sum against the
pipeline's p50 at concurrency 1 shows what the pipeline itself (gateway, gRPC hops, JSON,
handler load) adds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from google.protobuf import struct_pb2
from luna.common.v1 import account_pb2
from luna.estimator.v1 import estimator_pb2, estimator_pb2_grpc
from luna.events.v1 import events_pb2, events_pb2_grpc
from luna.faces.v1 import attributes_pb2, faces_pb2, faces_pb2_grpc
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from PIL import Image
from skimage import data

from bench.common import closed_loop, running_platform, save
from bench.matcher.data import generate

LOGIN, PASSWORD = "bench-events@example.com", "secret123"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def rest(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        body = await resp.json(content_type=None)
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {body}")
        return body


def astronaut_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


async def populate(
    address: str, account_id: str, list_id: str, n: int, dim: int, version: int
) -> float:
    gallery = generate(n, n_queries=1, dim=dim).gallery
    t0 = time.perf_counter()
    scope = account_pb2.AccountScope(account_id=account_id)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = faces_pb2_grpc.FacesServiceStub(ch)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                req = faces_pb2.CreateFaceRequest(scope=scope, list_ids=[list_id])
                req.attribute.data.descriptors.append(
                    attributes_pb2.Descriptor(
                        descriptor=gallery[i].astype("<f4").tobytes(), version=version
                    )
                )
                await stub.CreateFace(req)

        async def progress() -> None:
            while not queue.empty():
                await asyncio.sleep(15)
                log(f"  populated {n - queue.qsize()}/{n}")

        ticker = asyncio.ensure_future(progress())
        await asyncio.gather(*(worker() for _ in range(64)))
        ticker.cancel()
    return time.perf_counter() - t0


async def wait_indexed(address: str, n: int, timeout: float = 900) -> float:
    t0 = time.perf_counter()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = matcher_pb2_grpc.MatcherServiceStub(ch)
        while True:
            stats = await stub.GetIndexStats(matcher_pb2.GetIndexStatsRequest())
            if stats.faces >= n:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"matcher has {stats.faces} of {n} faces")
            await asyncio.sleep(1)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"faces": args.faces, "seconds_per_point": args.seconds}
    image = astronaut_jpeg()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-events-"))
    async with running_platform(data_dir) as runtime, aiohttp.ClientSession() as http:
        url = runtime["url"]
        addr = {name: s["address"] for name, s in runtime["services"].items()}
        made = await rest(
            http,
            "POST",
            url + "/6/accounts",
            json={"login": LOGIN, "password": PASSWORD, "account_type": "user"},
        )
        account_id = made["account_id"]
        auth = {
            "Authorization": "Basic " + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
        }
        list_id = (await rest(http, "POST", url + "/6/lists", json={}, headers=auth))["list_id"]
        scope = account_pb2.AccountScope(account_id=account_id)

        est_ch = grpc.aio.insecure_channel(addr["estimator"])
        estimator = estimator_pb2_grpc.EstimatorServiceStub(est_ch)
        detect_req = estimator_pb2.DetectRequest(
            images=[estimator_pb2.Image(data=image, content_type="image/jpeg")],
            detect_face=True,
            estimations=["face_descriptor"],
        )
        probe = (await estimator.Detect(detect_req)).results[0].detections.faces[0].descriptor
        dim = len(probe.data) // 4
        log(f"platform at {url}; descriptor dim {dim} version {probe.version}")

        out["populate_seconds"] = round(
            await populate(addr["faces"], account_id, list_id, args.faces, dim, probe.version), 1
        )
        log(f"populated {args.faces} faces in {out['populate_seconds']} s")
        out["index_wait_seconds"] = round(await wait_indexed(addr["matcher"], args.faces), 1)
        log(f"matcher indexed them after {out['index_wait_seconds']} s more")

        policies = {
            "detect_policy": {"multiface_policy": 2},
            "extract_policy": {"extract_face_descriptor": 1},
            "match_policy": [
                {"label": "big", "candidates": {"origin": "faces", "list_id": list_id}, "limit": 3}
            ],
            "storage_policy": {
                "face_sample_policy": {"store_sample": 0},
                "event_policy": {"store_event": 1, "wait_saving": 1},
            },
        }
        handler = await rest(
            http, "POST", url + "/6/handlers", json={"policies": policies}, headers=auth
        )
        handler_id = handler["handler_id"]
        gen_url = f"{url}/6/handlers/{handler_id}/events"
        headers = {**auth, "Content-Type": "image/jpeg"}

        async def generate() -> None:
            await rest(http, "POST", gen_url, data=image, headers=headers)

        m_ch = grpc.aio.insecure_channel(addr["matcher"])
        matcher = matcher_pb2_grpc.MatcherServiceStub(m_ch)
        match_req = matcher_pb2.MatchFacesRequest(
            scope=scope,
            references=[
                matcher_pb2.Reference(
                    id="q",
                    descriptor=matcher_pb2.RawDescriptor(
                        descriptor=probe.data, version=probe.version
                    ),
                )
            ],
            candidates=[matcher_pb2.FaceCandidates(list_id=list_id, limit=3)],
        )
        ev_ch = grpc.aio.insecure_channel(addr["events"])
        events = events_pb2_grpc.EventsServiceStub(ev_ch)
        sample_event = (await rest(http, "POST", gen_url, data=image, headers=headers))["events"][0]
        stored_shape = {
            k: v
            for k, v in sample_event.items()
            if k not in ("event_id", "url", "handler_id", "account_id")
        }

        async def save_event() -> None:
            ev = struct_pb2.Struct()
            ev.update(stored_shape)
            await events.SaveEvents(
                events_pb2.SaveEventsRequest(
                    scope=scope,
                    handler_id=handler_id,
                    wait_saving=True,
                    events=[
                        events_pb2.EventInput(
                            event_id=str(uuid.uuid4()),
                            event=ev,
                            descriptors=[
                                events_pb2.EventDescriptor(
                                    kind=events_pb2.DESCRIPTOR_KIND_FACE,
                                    descriptor=probe.data,
                                    version=probe.version,
                                )
                            ],
                        )
                    ],
                )
            )

        # warm-up: models, index pages, connection pools
        for _ in range(3):
            await generate()
            await estimator.Detect(detect_req)
            await matcher.MatchFaces(match_req)

        async def detect() -> None:
            await estimator.Detect(detect_req)

        async def match() -> None:
            await matcher.MatchFaces(match_req)

        results = {}
        for name, call in (("detect", detect), ("match_faces", match), ("save_events", save_event)):
            results[name] = await closed_loop(name, call, 1, args.seconds)
            log(f"{results[name]}")
        for c in (1, 8):
            key = f"generate_c{c}"
            results[key] = await closed_loop(key, generate, c, args.seconds)
            log(f"{results[key]}")
        comp = sum(results[k].p50_ms for k in ("detect", "match_faces", "save_events"))
        out["results"] = results
        out["component_p50_sum_ms"] = round(comp, 2)
        out["pipeline_p50_c1_ms"] = results["generate_c1"].p50_ms
        out["pipeline_overhead_p50_ms"] = round(results["generate_c1"].p50_ms - comp, 2)
        out["shares_of_c1_p50"] = {
            k: round(results[k].p50_ms / results["generate_c1"].p50_ms, 3)
            for k in ("detect", "match_faces", "save_events")
        }
        for ch in (est_ch, m_ch, ev_ch):
            await ch.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--name", default="events_pipeline")
    args = parser.parse_args()
    out = asyncio.run(bench(args))
    path = save(args.name, out)
    log(f"saved {path}")


if __name__ == "__main__":
    main()

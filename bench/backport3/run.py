"""Backport 3's translation cost: /4/matching/search vs the equivalent /6 handler, same run.

    .venv/bin/python -m bench.backport3.run [--persons 10000] [--seconds 10] [--rounds 3]

One platform (`luna up --free-ports`), one account created through /4 (its email/password
also work on /6), one LUNA 3 persons list of `--persons` persons, each with one descriptor.
The persons are made over the backport3 and faces gRPC APIs (a face with the descriptor in
the list's LUNA 5 list, a person, the link), because thousands of REST extractions would
take hours here; their descriptors are the clustered synthetic identities of
bench/matcher/data.py, so HNSW search costs what it costs on a real gallery.

Both sides do the same work per request on the same photo and the same LUNA 5 list: detect
one face, extract its descriptor, match it against the list (3 candidates), store the face
with its sample. LUNA 3: `POST /4/matching/search?list_id=...&limit=3` with X-Auth-Token on
Backport 3's listener. LUNA 5: `POST /6/handlers/{id}/events` with a handler whose policies
are detect (best face), extract, match the list (limit 3), store sample and face, no event
stored. Each point runs `--seconds` at concurrency 1 and 4, the two sides alternating for
`--rounds` rounds.
The ratio (search req/s / handler req/s) is the translation's cost: 1.0 means free.
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
from luna.backport3.v1 import backport3_pb2, backport3_pb2_grpc
from luna.common.v1 import account_pb2
from luna.faces.v1 import attributes_pb2, faces_pb2, faces_pb2_grpc
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from PIL import Image
from skimage import data

from bench.common import closed_loop, running_platform, save
from bench.matcher.data import generate

PASSWORD = "secretpassword"
VERSION, DIM = 200, 128


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


async def populate(addr: dict[str, str], account_id: str, list_id: str, n: int) -> float:
    """n persons, each with one face (descriptor) in the persons list's LUNA 5 list."""
    gallery = generate(n, n_queries=1, dim=DIM).gallery
    scope = account_pb2.AccountScope(account_id=account_id)
    t0 = time.perf_counter()
    person_ids: list[str] = []
    async with (
        grpc.aio.insecure_channel(addr["faces"]) as fch,
        grpc.aio.insecure_channel(addr["backport3"]) as bch,
    ):
        faces = faces_pb2_grpc.FacesServiceStub(fch)
        bp3 = backport3_pb2_grpc.Backport3ServiceStub(bch)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                req = faces_pb2.CreateFaceRequest(
                    scope=scope, list_ids=[list_id], user_data=f"p{i}"
                )
                req.attribute.data.descriptors.append(
                    attributes_pb2.Descriptor(
                        descriptor=gallery[i].astype("<f4").tobytes(), version=VERSION
                    )
                )
                face = (await faces.CreateFace(req)).face
                person = (
                    await bp3.CreatePerson(
                        backport3_pb2.CreatePersonRequest(account_id=account_id, user_data=f"p{i}")
                    )
                ).person
                await bp3.LinkDescriptor(
                    backport3_pb2.LinkDescriptorRequest(
                        account_id=account_id,
                        person_id=person.person_id,
                        descriptor_id=face.face_id,
                        attach=True,
                    )
                )
                person_ids.append(person.person_id)

        async def progress() -> None:
            while not queue.empty():
                await asyncio.sleep(15)
                log(f"  populated {n - queue.qsize()}/{n}")

        ticker = asyncio.ensure_future(progress())
        await asyncio.gather(*(worker() for _ in range(32)))
        ticker.cancel()
        for i in range(0, len(person_ids), 1000):
            await bp3.LinkPersonsToList(
                backport3_pb2.LinkPersonsToListRequest(
                    account_id=account_id,
                    list_id=list_id,
                    person_ids=person_ids[i : i + 1000],
                    attach=True,
                )
            )
    return time.perf_counter() - t0


async def wait_indexed(address: str, n: int, timeout: float = 900) -> float:
    t0 = time.perf_counter()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = matcher_pb2_grpc.MatcherServiceStub(ch)
        while (await stub.GetIndexStats(matcher_pb2.GetIndexStatsRequest())).faces < n:
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"matcher lacks some of {n} faces")
            await asyncio.sleep(1)
    return time.perf_counter() - t0


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"persons": args.persons, "seconds_per_point": args.seconds}
    image = astronaut_jpeg()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-backport3-"))
    async with running_platform(data_dir) as runtime, aiohttp.ClientSession() as http:
        url, bp3_url = runtime["url"], runtime["backport3_url"]
        addr = {name: s["address"] for name, s in runtime["services"].items()}
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        token = (
            await rest(
                http, "POST", bp3_url + "/4/accounts",
                json={"organization_name": "bench", "email": email, "password": PASSWORD},
            )
        )["token"]  # fmt: skip
        tok = {"X-Auth-Token": token}
        basic = {
            "Authorization": "Basic " + base64.b64encode(f"{email}:{PASSWORD}".encode()).decode()
        }
        list_id = (await rest(http, "POST", bp3_url + "/4/storage/lists", json={}, headers=tok))[
            "list_id"
        ]
        account = await rest(http, "GET", url + "/6/account", headers=basic)
        log(f"platform at {url}, Backport 3 at {bp3_url}")
        out["populate_seconds"] = round(
            await populate(addr, account["account_id"], list_id, args.persons), 1
        )
        log(f"populated {args.persons} persons in {out['populate_seconds']} s")
        out["index_wait_seconds"] = round(await wait_indexed(addr["matcher"], args.persons), 1)

        policies = {
            "detect_policy": {"multiface_policy": 2},
            "extract_policy": {"extract_face_descriptor": 1},
            "match_policy": [
                {"label": "l", "candidates": {"origin": "faces", "list_id": list_id}, "limit": 3}
            ],
            "storage_policy": {
                "face_sample_policy": {"store_sample": 1},
                "face_policy": {"store_face": 1},
                "event_policy": {"store_event": 0},
            },
        }
        handler = await rest(
            http, "POST", url + "/6/handlers", json={"policies": policies}, headers=basic
        )
        gen_url = f"{url}/6/handlers/{handler['handler_id']}/events"
        search_url = f"{bp3_url}/4/matching/search"
        img = {"Content-Type": "image/jpeg"}

        async def v6() -> None:
            await rest(http, "POST", gen_url, data=image, headers={**basic, **img})

        async def v4() -> None:
            await rest(
                http, "POST", search_url, data=image, headers={**tok, **img},
                params={"list_id": list_id, "limit": 3},
            )  # fmt: skip

        # Both answer the same question: the same top candidate.
        got4 = await rest(
            http, "POST", search_url, data=image, headers={**tok, **img},
            params={"list_id": list_id, "limit": 3},
        )  # fmt: skip
        got6 = await rest(http, "POST", gen_url, data=image, headers={**basic, **img})
        out["sample_search_candidates"] = got4["candidates"]
        out["sample_handler_matches"] = got6["events"][0].get("matches")
        for _ in range(3):  # warm-up
            await v6()
            await v4()
        results: dict[str, list[Any]] = {}
        # Alternating short rounds, so load from anything else on the machine falls on both.
        for c in (1, 4):
            for r in range(args.rounds):
                for name, call in ((f"v6_handler_c{c}", v6), (f"v4_search_c{c}", v4)):
                    stats = await closed_loop(name, call, c, args.seconds)
                    results.setdefault(name, []).append(stats)
                    log(f"round {r + 1}: {stats}")
        out["results"] = results
        totals = {
            name: {
                "requests": sum(s.requests for s in runs),
                "rps": round(sum(s.requests for s in runs) / sum(s.seconds for s in runs), 2),
                "p50_ms_mean": round(sum(s.p50_ms for s in runs) / len(runs), 2),
            }
            for name, runs in results.items()
        }
        out["totals"] = totals
        out["ratio_rps"] = {
            f"c{c}": round(totals[f"v4_search_c{c}"]["rps"] / totals[f"v6_handler_c{c}"]["rps"], 3)
            for c in (1, 4)
        }
        out["p50_added_ms"] = {
            f"c{c}": round(
                totals[f"v4_search_c{c}"]["p50_ms_mean"]
                - totals[f"v6_handler_c{c}"]["p50_ms_mean"],
                2,
            )
            for c in (1, 4)
        }
        log(f"ratio (search rps / handler rps): {out['ratio_rps']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per point and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="backport3_search")
    args = parser.parse_args()
    path = save(args.name, asyncio.run(bench(args)))
    log(f"saved {path}")


if __name__ == "__main__":
    main()

"""Ingestion benchmark: REST face creation (the documented pipeline) and the operators' bulk
import, against the raw limit of the same rows written straight into PostgreSQL, one run:

    python -m bench.ingest.run --duration 10      # -> bench/results/ingest.json

  rest_c1 / rest_c8   per face: POST /6/attributes (a descriptor) then POST /6/faces with that
                      attribute in a list; `concurrency` clients back to back
  raw_pg_c8           the same rows (face, attribute, descriptor, list link) inserted with
                      psycopg by 8 clients, one transaction per face, no API, no outbox, no
                      NATS: what PostgreSQL alone allows on this machine
  bulk_import         FacesService.ImportFaces in batches of 1000, --in-flight at a time
                      (`luna faces import`), the matcher following FACES_CHANGES meanwhile
  raw_pg_copy         the same bulk rows COPY'd straight into the tables (the raw limit)
Also, per REST loop, the CPU milliseconds each process spent per face (gateway, faces,
PostgreSQL, NATS, matcher, this client): on a machine whose cores they all share, where the
time of a face goes. Targets (issue #14): REST >= 300 faces/s at concurrency 8; bulk >= 5,000
faces/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import numpy as np
import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from luna.common.v1 import account_pb2  # noqa: E402
from luna.faces.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402

from bench.common import closed_loop, running_platform, save  # noqa: E402

VERSION = 200
LOGIN = "bench-ingest@example.com"
PASSWORD = "bench-password-1"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def unit_rows(n: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, 128)).astype(np.float32)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


async def rest(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        body = await resp.json(content_type=None)
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {body}")
        return body


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    rows: dict[str, Any] = {}
    cpu: dict[str, dict[str, float]] = {}
    transactions: dict[str, float] = {}
    wakeups: dict[str, dict[str, float]] = {}

    def result() -> dict[str, Any]:
        return {
            "duration_s": args.duration,
            "rows": rows,
            "cpu_ms_per_face": cpu,
            "transactions_per_face": transactions,
            "wakeups_per_face": wakeups,
        }

    try:
        async with running_platform(data_dir) as runtime, aiohttp.ClientSession() as http:
            url = runtime["url"]
            made = await rest(
                http,
                "POST",
                url + "/6/accounts",
                json={"login": LOGIN, "password": PASSWORD, "account_type": "user"},
            )
            account_id = made["account_id"]
            token = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
            auth = {"Authorization": f"Basic {token}"}
            list_id = (await rest(http, "POST", url + "/6/lists", json={}, headers=auth))["list_id"]
            vecs = unit_rows(4096, 1)
            counter = iter(range(10**9))
            # A lean client (part of the measured CPU): bodies encoded once, ids read from the
            # answers' bytes; the same requests as json= with a parsed answer.
            attr_bodies = [
                orjson.dumps({"face_descriptors": [
                    {"descriptor": base64.b64encode(v.tobytes()).decode(), "version": VERSION}
                ]})
                for v in vecs
            ]  # fmt: skip
            face_body = b'{"attribute":{"attribute_id":"%s"},"lists":["' + list_id.encode() + b'"]}'
            headers = {**auth, "Content-Type": "application/json"}
            attributes_url, faces_url = url + "/6/attributes", url + "/6/faces"

            async def post(target: str, body: bytes) -> dict[str, Any]:
                async with http.post(target, data=body, headers=headers) as resp:
                    answer = orjson.loads(await resp.read())
                    if resp.status >= 300:
                        raise RuntimeError(f"POST {target}: {resp.status} {answer}")
                    return answer

            async def create_one() -> None:
                body = attr_bodies[next(counter) % len(attr_bodies)]
                attribute_id = (await post(attributes_url, body))["attribute_id"]
                await post(faces_url, face_body % attribute_id.encode())

            for c in args.concurrency:
                before, commits = cpu_seconds(runtime), await pg_transactions(runtime)
                slept = sleeps(runtime)
                stats = await closed_loop(f"rest_c{c}", create_one, c, args.duration)
                rows[stats.name] = stats
                spent = cpu_seconds(runtime)
                cpu[stats.name] = {
                    k: round(1000 * (spent[k] - before[k]) / stats.requests, 3) for k in spent
                }
                now_slept = sleeps(runtime)
                wakeups[stats.name] = {
                    k: round((now_slept[k] - slept[k]) / stats.requests, 2)
                    for k in now_slept
                    if now_slept[k] - slept[k] >= stats.requests / 10
                }
                # How well concurrent creates share transactions (group commit).
                per_face = (await pg_transactions(runtime) - commits) / stats.requests
                transactions[stats.name] = round(per_face, 3)
                log(f"{stats} PostgreSQL transactions/face {per_face:.2f}")
            if args.skip_raw:
                return result()

            # Raw limit: the same rows straight into PostgreSQL, one transaction per face.
            db = runtime["database_url"]
            conns = [await psycopg.AsyncConnection.connect(db) for _ in range(8)]
            free = asyncio.Queue()
            for conn in conns:
                free.put_nowait(conn)

            async def raw_one() -> None:
                conn = await free.get()
                try:
                    fid = str(uuid.uuid4())
                    v = vecs[next(counter) % len(vecs)].tobytes()
                    async with conn.transaction():
                        await conn.execute(
                            "INSERT INTO faces (face_id, account_id) VALUES (%s, %s)",
                            (fid, account_id),
                        )
                        await conn.execute(
                            "INSERT INTO face_attributes (face_id) VALUES (%s)", (fid,)
                        )
                        await conn.execute(
                            "INSERT INTO face_descriptors (face_id, version, descriptor)"
                            " VALUES (%s, %s, %s)",
                            (fid, VERSION, v),
                        )
                        await conn.execute(
                            "INSERT INTO list_faces (list_id, face_id) VALUES (%s, %s)",
                            (list_id, fid),
                        )
                finally:
                    free.put_nowait(conn)

            stats = await closed_loop("raw_pg_c8", raw_one, 8, args.duration)
            rows[stats.name] = stats
            log(f"{stats}")

            # Bulk: ImportFaces vs COPY of the same rows.
            n = args.bulk
            bulk = unit_rows(n, 2)
            scope = account_pb2.AccountScope(account_id=account_id)
            t0 = time.perf_counter()
            async with grpc.aio.insecure_channel(runtime["services"]["faces"]["address"]) as ch:
                stub = faces_pb2_grpc.FacesServiceStub(ch)

                async def send(s: int) -> None:
                    req = faces_pb2.ImportFacesRequest(
                        scope=scope, descriptor_version=VERSION, list_ids=[list_id]
                    )
                    for i in range(s, min(n, s + 1000)):
                        req.faces.add(descriptor=bulk[i].tobytes(), user_data=f"b{i}")
                    await stub.ImportFaces(req)

                # A window of batches in flight, as the CLI (services/faces/importer.py).
                window = asyncio.Semaphore(args.in_flight)

                async def windowed(s: int) -> None:
                    async with window:
                        await send(s)

                await asyncio.gather(*(windowed(s) for s in range(0, n, 1000)))
            secs = time.perf_counter() - t0
            rows["bulk_import"] = {"faces": n, "seconds": round(secs, 3),
                                   "faces_per_s": round(n / secs, 1)}  # fmt: skip
            log(f"bulk_import {rows['bulk_import']}")
            conn = conns[0]
            ids = [str(uuid.uuid4()) for _ in range(n)]
            t0 = time.perf_counter()
            async with conn.transaction(), conn.cursor() as cur:
                async with cur.copy("COPY faces (face_id, account_id, user_data) FROM STDIN") as cp:
                    for i, f in enumerate(ids):
                        await cp.write_row((f, account_id, f"c{i}"))
                async with cur.copy("COPY face_attributes (face_id) FROM STDIN") as cp:
                    for f in ids:
                        await cp.write_row((f,))
                async with cur.copy(
                    "COPY face_descriptors (face_id, version, descriptor) FROM STDIN"
                ) as cp:
                    for i, f in enumerate(ids):
                        await cp.write_row((f, VERSION, bulk[i].tobytes()))
                async with cur.copy("COPY list_faces (list_id, face_id) FROM STDIN") as cp:
                    for f in ids:
                        await cp.write_row((list_id, f))
            secs = time.perf_counter() - t0
            rows["raw_pg_copy"] = {"faces": n, "seconds": round(secs, 3),
                                   "faces_per_s": round(n / secs, 1)}  # fmt: skip
            log(f"raw_pg_copy {rows['raw_pg_copy']}")
            for conn in conns:
                await conn.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result()


async def pg_transactions(runtime: dict[str, Any]) -> int:
    """Writing transactions begun in the platform's database so far: the next transaction id
    (exact, where the statistics collector's counts lag by up to seconds)."""
    async with await psycopg.AsyncConnection.connect(runtime["database_url"]) as conn:
        cur = await conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(runtime: dict[str, Any]) -> dict[str, float]:
    """CPU seconds used so far per process of the platform (PostgreSQL with its backends) and
    by this benchmark: where the time of a face goes on a machine whose cores they share."""
    out = {name: _cpu_of(s["pid"]) for name, s in runtime["services"].items() if s.get("pid")}
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    for name, rec in runtime.get("infrastructure", {}).items():
        out[name] = _cpu_of(rec["pid"]) + sum(_cpu_of(c) for c in children.get(rec["pid"], ()))
    out["bench"] = _cpu_of(os.getpid())
    return out


def _sleeps_of(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def sleeps(runtime: dict[str, Any]) -> dict[str, int]:
    """Times each Python service's threads went to sleep waiting (voluntary context
    switches): on a shared, virtualised machine each wake-up after one costs more than the
    work it wakes for, so a per-face count of them shows where round trips go, and it does
    not vary with the machine's load as CPU seconds do."""
    return {name: _sleeps_of(s["pid"]) for name, s in runtime["services"].items() if s.get("pid")}


def table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    raw = rows["raw_pg_c8"].rps if "raw_pg_c8" in rows else float("nan")
    lines = [f"{'path':<14} {'faces/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'/raw':>6}"]
    for name, row in rows.items():
        if not isinstance(row, dict):
            lines.append(
                f"{name:<14} {row.rps:>9,.1f} {row.p50_ms:>8.2f} {row.p99_ms:>8.2f}"
                f" {row.rps / raw:>6.2f}"
            )
    copy = rows["raw_pg_copy"]["faces_per_s"] if "raw_pg_copy" in rows else float("nan")
    for name in ("bulk_import", "raw_pg_copy") if "raw_pg_copy" in rows else ():
        rate = rows[name]["faces_per_s"]
        lines.append(f"{name:<14} {rate:>9,.1f} {'':>8} {'':>8} {rate / copy:>6.2f}")
    for name, parts in result.get("cpu_ms_per_face", {}).items():
        shown = {k: v for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.05}
        total = sum(parts.values())
        lines.append(
            f"{name} CPU ms/face: {total:.2f} = "
            + ", ".join(f"{k} {v:.2f}" for k, v in shown.items())
        )
    for name, per_face in result.get("transactions_per_face", {}).items():
        lines.append(f"{name} PostgreSQL writing transactions/face: {per_face:.2f}")
    for name, parts in result.get("wakeups_per_face", {}).items():
        lines.append(
            f"{name} wake-ups/face: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per closed loop")
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("--bulk", type=int, default=20_000, help="faces of the bulk rows")
    ap.add_argument("--skip-raw", action="store_true", help="REST loops only (no raw or bulk rows)")
    ap.add_argument("--in-flight", type=int, default=4, help="bulk batches in flight (CLI: 4)")
    args = ap.parse_args()
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    result = asyncio.run(bench(args))
    path = save("ingest", result)
    print(table(result))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

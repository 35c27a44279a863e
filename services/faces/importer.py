"""`luna faces import FILE`: load faces with descriptors from a JSON Lines file through
FacesService.ImportFaces (so rows, lists and FACES_CHANGES are exactly what CreateFace gives),
with a progress bar.

One face per line: {"descriptor": "<base64 of packed little-endian float32>",
"face_id": "<uuid, optional>", "user_data": "...", "external_id": "...", "avatar": "..."}.
Batches of --batch faces, each one transaction (all or none), four in flight so the file is
parsed while the service writes and batches overlap in the service (each locks its lists
only from their update to its commit). A failed batch stops the import and says which lines it held.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from luna.common.v1 import account_pb2
from luna.faces.v1 import faces_pb2, faces_pb2_grpc

from services.common import config, errors, grpc_client

WIDTH = 30


def default_address() -> str:
    """The running platform's faces service (runtime.json), else the configured address."""
    path = config.data_dir() / "runtime.json"
    if path.exists():
        faces = json.loads(path.read_text()).get("services", {}).get("faces", {})
        if faces.get("address"):
            return str(faces["address"])
    return config.service_address("faces")


def batches(
    path: Path, size: int, scope: account_pb2.AccountScope, version: int, list_ids: list[str]
) -> Iterator[tuple[int, faces_pb2.ImportFacesRequest]]:
    """(first line number, request) per `size` lines."""
    req = faces_pb2.ImportFacesRequest(scope=scope, descriptor_version=version, list_ids=list_ids)
    first = 1
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            item: dict[str, Any] = json.loads(line)
            req.faces.add(
                descriptor=base64.b64decode(item["descriptor"]),
                face_id=item.get("face_id", ""),
                user_data=item.get("user_data", ""),
                external_id=item.get("external_id", ""),
                avatar=item.get("avatar", ""),
            )
            if len(req.faces) == size:
                yield first, req
                req = faces_pb2.ImportFacesRequest(
                    scope=scope, descriptor_version=version, list_ids=list_ids
                )
                first = number + 1
    if req.faces:
        yield first, req


def bar(done: int, total: int, seconds: float) -> str:
    filled = WIDTH * done // max(total, 1)
    rate = done / seconds if seconds > 0 else 0.0
    return f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} faces  {rate:,.0f} faces/s"


async def import_file(
    path: Path,
    *,
    account_id: str,
    list_ids: list[str],
    version: int,
    address: str | None = None,
    batch: int = 1000,
    in_flight: int = 4,
    out: TextIO = sys.stderr,
) -> int:
    """Import every line; returns the exit status (0: all imported)."""
    with path.open("rb") as f:
        total = sum(1 for line in f if line.strip())
    scope = account_pb2.AccountScope(account_id=account_id)
    tty = out.isatty()
    channel = grpc_client.channel("faces", address or default_address())
    stub = grpc_client.stub(faces_pb2_grpc.FacesServiceStub, channel)
    done = 0
    started = time.perf_counter()
    pending: set[asyncio.Task[int]] = set()
    failure: str | None = None

    async def send(first: int, req: faces_pb2.ImportFacesRequest) -> int:
        try:
            reply = await stub.ImportFaces(req)
        except errors.LunaError as exc:
            raise RuntimeError(
                f"lines {first}..{first + len(req.faces) - 1}: {exc.code} {exc.detail}"
            ) from None
        return len(reply.face_ids)

    try:
        for first, req in batches(path, batch, scope, version, list_ids):
            pending.add(asyncio.create_task(send(first, req)))
            if len(pending) < in_flight:
                continue
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                done += task.result()
            line = bar(done, total, time.perf_counter() - started)
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=out, flush=True)
        for task in asyncio.as_completed(pending):
            done += await task
        pending = set()
    except RuntimeError as exc:
        failure = str(exc)
    finally:
        for task in pending:
            task.cancel()
        await channel.close()
    print(("\r" if tty else "") + bar(done, total, time.perf_counter() - started), file=out)
    if failure:
        print(f"import stopped: {failure}", file=out)
        return 1
    return 0

"""Benchmark: detect + descriptor on the same photos, four ways, concurrency 1 and 8.

(a) raw onnxruntime: cv2 decode, YuNet, alignment, SFace through bare sessions, in-process
    (the limit the service wraps; threads for concurrency, onnxruntime releases the GIL);
(b) EstimatorService.Detect over gRPC to `python -m services.estimator` on a free port;
(c) REST POST /6/sdk?detect_face=1&estimate_face_descriptor=1 through `luna up --free-ports`
    in a temp dir;
(d) the `face_recognition` library (dlib HOG detector + ResNet encoder) as a peer, run by the
    Python of a separate venv (BENCH_FR_PYTHON, default /tmp/fr-venv/bin/python) when it
    has the package; skipped with the reason otherwise.

One request = one photo; photos rotate. faces/s = faces found / wall time. Not a test.

    python -m bench.estimator.run [--seconds 8] [--concurrency 1 8] [--batch-wait-ms 0 2]
        [--no-rest] [--rounds 3] [--compare-tree /work/main]

(b) runs once per `--batch-wait-ms` value (LUNA_ESTIMATOR_BATCH_WAIT_MS of the estimator it
starts; 0 = no batching across requests), so batching off and on are compared with raw
onnxruntime in the same run; `--variant 'label:ENV=V,ENV=V'` adds an estimator with other
settings, `--compare-tree` the estimator of another checkout. All services (and the platform
for (c)) start first; then `--rounds` rounds run raw, every gRPC estimator and REST back to
back, so each row's `ratio_vs_raw` is to the raw row of its own round, and the medians over
rounds are printed last. Every row also has the CPU milliseconds per request (raw: this
process; a service: its process tree plus this client), which moves much less with the
neighbours' load than faces/s on a shared machine; `cpu x` = raw's / the service's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import grpc
import numpy as np
import onnxruntime as ort
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc
from luna.estimator.v1 import estimator_pb2 as epb
from luna.estimator.v1 import estimator_pb2_grpc
from PIL import Image
from skimage import data

from bench.common import running_platform, save
from services.common import grpc_client
from services.estimator import align, detect
from services.estimator import model_repo as mr
from services.estimator.extract import sface_input
from services.launcher.embedded import pick_free_port

PHOTO_FILES = ("01.jpg", "p3.jpg", "test_3ddfa.jpg")  # nsface wheel photos (p3 is a PNG)


def photos(repo: Path) -> list[tuple[str, bytes]]:
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG", quality=95)
    out = [("astronaut.jpg", buf.getvalue())]
    out += [(n, (mr.test_images_dir(repo) / n).read_bytes()) for n in PHOTO_FILES]
    return out


def pct(lat: list[float], q: float) -> float:
    s = sorted(lat)
    return round(1000 * s[min(len(s) - 1, int(q * len(s)))], 2)


def stats(name: str, c: int, lat: list[float], faces: int, wall: float) -> dict[str, Any]:
    return {
        "name": name,
        "concurrency": c,
        "requests": len(lat),
        "faces": faces,
        "seconds": round(wall, 2),
        "faces_per_s": round(faces / wall, 2),
        "requests_per_s": round(len(lat) / wall, 2),
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
    }


async def closed_loop(
    name: str,
    call: Callable[[bytes], Awaitable[int]],
    images: list[tuple[str, bytes]],
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """`concurrency` workers, each sending the photos in turn, back to back."""
    for _, img in images:  # warm-up: sessions, channels, first allocations
        await call(img)
    lat: list[float] = []
    faces = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal faces
        i = offset
        while time.perf_counter() < stop:
            t = time.perf_counter()
            # not `faces += await ...`: that reads `faces` before the await and loses the
            # other workers' updates
            n = await call(images[i % len(images)][1])
            lat.append(time.perf_counter() - t)
            faces += n
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return stats(name, concurrency, lat, faces, time.perf_counter() - t0)


# ---------------------------------------------------------------------------- (a) raw
class RawOnnx:
    """The same models with nothing around them: cv2 decode, numpy pre/post, ORT run."""

    def __init__(self, repo: Path) -> None:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        prov = ["CPUExecutionProvider"]
        self.yunet = ort.InferenceSession(str(mr.model_path(repo, "yunet")), opts, providers=prov)
        self.sface = ort.InferenceSession(str(mr.model_path(repo, "sface")), opts, providers=prov)
        self.names = [o.name for o in self.yunet.get_outputs()]

    def __call__(self, encoded: bytes) -> int:
        bgr = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        blob, scale = detect.yunet_input(rgb)
        out = dict(zip(self.names, self.yunet.run(self.names, {"input": blob}), strict=True))
        dets = detect.yunet_decode(out, scale, rgb.shape[1], rgb.shape[0])
        warps = [align.warp_face(rgb, d.landmarks5) for d in dets]
        if warps:
            self.sface.run(None, {"data": sface_input(warps)})
        return len(dets)


def bench_raw(repo: Path, images: list[tuple[str, bytes]], c: int, seconds: float) -> dict:
    raw = RawOnnx(repo)
    for _, img in images:
        raw(img)
    lat: list[float] = []
    faces = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            t = time.perf_counter()
            n = raw(images[i % len(images)][1])
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                faces[0] += n
            i += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(c)]
    t0, cpu0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = stats("raw_onnxruntime", c, lat, faces[0], time.perf_counter() - t0)
    # this process's CPU over the timed loop only (not session creation or warm-up)
    row["cpu_ms_per_req"] = round(1000 * (time.process_time() - cpu0) / max(1, len(lat)), 1)
    return row


# ---------------------------------------------------------------------------- (b) gRPC
async def start_estimator(
    repo: Path, log: Path, extra_env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    address = f"127.0.0.1:{pick_free_port()}"
    env = {**os.environ, "LUNA_ESTIMATOR_ADDRESS": address, "LUNA_MODELS_DIR": str(repo)}
    env.update(extra_env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.estimator", env=env, stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    async with grpc.aio.insecure_channel(address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        deadline = time.monotonic() + 120
        while True:
            if proc.returncode is not None:
                text = await asyncio.to_thread(log.read_text)
                raise RuntimeError(f"estimator exited: {text[-2000:]}")
            try:
                r = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return proc, address
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("estimator did not start")
            await asyncio.sleep(0.3)


def grpc_call(stub: Any) -> Callable[[bytes], Awaitable[int]]:
    async def call(img: bytes) -> int:
        reply = await stub.Detect(
            epb.DetectRequest(
                images=[epb.Image(data=img)], detect_face=True, estimations=["face_descriptor"]
            )
        )
        return len(reply.results[0].detections.faces)

    return call


# ---------------------------------------------------------------------------- (c) REST
def rest_call(http: aiohttp.ClientSession, url: str, auth: dict) -> Callable:
    ctypes = {b"\x89PNG": "image/png"}

    async def call(img: bytes) -> int:
        ctype = ctypes.get(img[:4], "image/jpeg")
        async with http.post(
            url + "/6/sdk",
            params={"detect_face": "1", "estimate_face_descriptor": "1"},
            data=img,
            headers={**auth, "Content-Type": ctype},
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        (image,) = body["images_estimations"]
        return len(image["estimations"])

    return call


# ---------------------------------------------------------------------------- (d) dlib
FR_SCRIPT = textwrap.dedent(
    """
    import io, json, multiprocessing as mp, sys, time
    import numpy as np, face_recognition
    from PIL import Image
    files, conc, seconds = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
    imgs = [np.asarray(Image.open(io.BytesIO(open(f, "rb").read())).convert("RGB")) for f in files]
    def one(i):
        # decode is done above once; time only detection + encoding
        img = imgs[i % len(imgs)]
        locs = face_recognition.face_locations(img)
        face_recognition.face_encodings(img, locs)
        return len(locs)
    def worker(args):
        # dlib deadlocks under Python threads: concurrency = processes (fork)
        k, stop = args
        lat, faces, i = [], 0, k
        while time.time() < stop:
            t = time.perf_counter(); faces += one(i); lat.append(time.perf_counter() - t)
            i += 1
        return lat, faces
    for i in range(len(imgs)):
        one(i)
    out = []
    ctx = mp.get_context("fork")
    for c in conc:
        t0 = time.perf_counter()
        stop = time.time() + seconds
        with ctx.Pool(c) as pool:
            parts = pool.map(worker, [(k, stop) for k in range(c)])
        lat = [x for p, _ in parts for x in p]
        out.append({"c": c, "lat": lat, "faces": sum(f for _, f in parts),
                    "wall": time.perf_counter() - t0})
    print(json.dumps(out))
    """
)


def bench_face_recognition(images: list, conc: list[int], seconds: float) -> tuple[list, str]:
    py = os.environ.get("BENCH_FR_PYTHON", "/tmp/fr-venv/bin/python")
    if not Path(py).exists():
        return [], f"no Python at {py} (face_recognition venv not built)"
    check = subprocess.run([py, "-c", "import face_recognition"], capture_output=True, text=True)
    if check.returncode != 0:
        return [], f"face_recognition not importable in {py}: {check.stderr.strip()[-300:]}"
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, img in images:
            p = Path(tmp) / name
            p.write_bytes(img)
            files.append(str(p))
        proc = subprocess.run(
            [py, "-c", FR_SCRIPT, json.dumps(files), json.dumps(conc), str(seconds)],
            capture_output=True,
            text=True,
            timeout=120 + 6 * seconds * len(conc),
        )
    if proc.returncode != 0:
        return [], f"face_recognition run failed: {proc.stderr.strip()[-500:]}"
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    note = (
        "decode excluded (done once up front); HOG detector, 128-D dlib ResNet encoder; "
        "concurrency = forked processes (dlib deadlocks under threads)"
    )
    return [
        stats("face_recognition_dlib", r["c"], r["lat"], r["faces"], r["wall"]) for r in runs
    ], note


# ---------------------------------------------------------------------------- main
# REST: only the processes a /6/sdk request goes through count, not the platform's idle rest
# (NATS, PostgreSQL, the matcher's and the task workers' loops) that runs meanwhile.
REST_PROCESSES = ("services.gateway", "services.estimator")


def tree_cpu_s(pid: int, only: tuple[str, ...] = ()) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants (those
    whose command line names one of `only`, when given)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            if only and not any(name in p.cmdline() for name in only):
                continue
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def measured(
    name: str,
    call: Callable[[bytes], Awaitable[int]],
    images: list[tuple[str, bytes]],
    c: int,
    seconds: float,
    server_pid: int,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    """closed_loop, plus the CPU the server side (process tree) and this client spent per
    request: on a shared machine wall-clock rates move with the neighbours' load, CPU per
    request much less."""
    for _, img in images:  # warm-up outside the counted CPU
        await call(img)
    cpu0, own0 = tree_cpu_s(server_pid, only), time.process_time()
    row = await closed_loop(name, call, images, c, seconds)
    n = max(1, row["requests"])
    row["server_cpu_ms_per_req"] = round(1000 * (tree_cpu_s(server_pid, only) - cpu0) / n, 1)
    row["client_cpu_ms_per_req"] = round(1000 * (time.process_time() - own0) / n, 1)
    row["cpu_ms_per_req"] = round(row["server_cpu_ms_per_req"] + row["client_cpu_ms_per_req"], 1)
    return row


async def start_rest(
    stack: contextlib.AsyncExitStack, tmp: Path, repo: Path
) -> tuple[Callable[[bytes], Awaitable[int]], int]:
    runtime = await stack.enter_async_context(
        running_platform(tmp / "platform", {"LUNA_MODELS_DIR": str(repo)})
    )
    http = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    )
    url = runtime["url"]
    login = f"bench{os.getpid()}@example.com"
    async with http.post(
        url + "/6/accounts",
        json={"login": login, "password": "secret1", "account_type": "user"},
    ) as resp:
        assert resp.status == 201
    auth = {"Authorization": aiohttp.encode_basic_auth(login, "secret1")}
    return rest_call(http, url, auth), int(runtime["supervisor_pid"])


async def amain(
    seconds: float,
    conc: list[int],
    batch_waits: list[float],
    rest: bool = True,
    rounds: int = 1,
    compare_trees: tuple[str, ...] = (),
    variants_env: tuple[str, ...] = (),
) -> dict[str, Any]:
    repo = mr.models_dir()
    images = photos(repo)
    results: dict[str, Any] = {
        "photos": [n for n, _ in images],
        "request": "one photo per request: detect faces + 128-D descriptor of each",
        "onnxruntime": ort.__version__,
        "models": str(repo),
        "runs": [],
    }
    runs: list[dict[str, Any]] = results["runs"]
    # One estimator per batching setting, --variant and --compare-tree, and the platform for
    # REST, all started first; then rounds of raw and every service back to back, so load
    # drift hits every row alike. Each row's ratio is to the raw row of its own round.
    variants: list[tuple[str, dict[str, str]]] = [
        (f"grpc_estimator_wait{w:g}ms", {"LUNA_ESTIMATOR_BATCH_WAIT_MS": str(w)})
        for w in batch_waits
    ]
    for spec in variants_env:
        label, _, pairs = spec.partition(":")
        env = dict(p.split("=", 1) for p in pairs.split(",") if p)
        variants.append((f"grpc_{label}", env))
    for tree in compare_trees:
        variants.append((f"grpc_estimator_{Path(tree).name}", {"PYTHONPATH": f"{tree}:{tree}/gen"}))
    services: list[tuple[str, Callable[[bytes], Awaitable[int]], int]] = []
    procs = []
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        try:
            for k, (name, env) in enumerate(variants):
                proc, address = await start_estimator(repo, tmp / f"est{k}.log", env)
                procs.append(proc)
                channel = grpc_client.channel("estimator", address)
                stack.push_async_callback(channel.close)
                stub = grpc_client.stub(estimator_pb2_grpc.EstimatorServiceStub, channel)
                services.append((name, grpc_call(stub), proc.pid))
            if rest:
                call, pid = await start_rest(stack, tmp, repo)
                services.append(("rest_sdk", call, pid))
            for rnd in range(rounds):
                for c in conc:
                    raw_row = await asyncio.to_thread(bench_raw, repo, images, c, seconds)
                    raw_row["round"] = rnd
                    raw_row["ratio_vs_raw"] = 1.0
                    runs.append(raw_row)
                    for name, call, pid in services:
                        only = REST_PROCESSES if name == "rest_sdk" else ()
                        row = await measured(name, call, images, c, seconds, pid, only)
                        row["round"] = rnd
                        row["ratio_vs_raw"] = round(row["faces_per_s"] / raw_row["faces_per_s"], 3)
                        row["cpu_ratio_vs_raw"] = round(
                            raw_row["cpu_ms_per_req"] / max(row["cpu_ms_per_req"], 1e-9), 3
                        )
                        runs.append(row)
        finally:
            for proc in procs:
                proc.terminate()
                await proc.wait()
    if rest:
        fr_runs, note = await asyncio.to_thread(bench_face_recognition, images, conc, seconds)
        raw = {r["concurrency"]: r["faces_per_s"] for r in runs if r["name"] == "raw_onnxruntime"}
        for r in fr_runs:
            r["ratio_vs_raw"] = round(r["faces_per_s"] / raw[r["concurrency"]], 3)
        runs.extend(fr_runs)
        results["face_recognition"] = note
    else:
        results["face_recognition"] = "not run (--no-rest)"
    results["medians"] = medians(runs)
    return results


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (run, concurrency): medians over the rounds of faces/s, ratio to raw, CPU ms per
    request and its ratio (raw's CPU per request / the service's: > 1 = cheaper than raw)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["name"], r["concurrency"]), []).append(r)
    out = []
    for (name, c), rows in groups.items():

        def med(key: str, rows: list[dict[str, Any]] = rows) -> float | None:
            vals = [r[key] for r in rows if key in r]
            return round(statistics.median(vals), 3) if vals else None

        out.append(
            {
                "name": name,
                "concurrency": c,
                "rounds": len(rows),
                "faces_per_s": med("faces_per_s"),
                "ratio_vs_raw": med("ratio_vs_raw"),
                "ratios": [r.get("ratio_vs_raw") for r in rows],
                "cpu_ms_per_req": med("cpu_ms_per_req"),
                "cpu_ratio_vs_raw": med("cpu_ratio_vs_raw"),
                "p50_ms": med("p50_ms"),
            }
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--batch-wait-ms", type=float, nargs="+", default=[2.0])
    ap.add_argument("--no-rest", action="store_true", help="raw and gRPC only")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of raw + every gRPC variant")
    ap.add_argument(
        "--variant",
        nargs="*",
        default=[],
        help="also run an estimator with these settings, e.g. "
        "'ort_default:LUNA_ESTIMATOR_INTRA_OP_THREADS=0,LUNA_ESTIMATOR_INFERENCE_THREADS=8'",
    )
    ap.add_argument(
        "--compare-tree",
        nargs="*",
        default=[],
        help="also run the estimator of another checkout (e.g. /work/main) with its defaults",
    )
    args = ap.parse_args()
    results = asyncio.run(
        amain(
            args.seconds,
            args.concurrency,
            args.batch_wait_ms,
            rest=not args.no_rest,
            rounds=args.rounds,
            compare_trees=tuple(args.compare_tree),
            variants_env=tuple(args.variant),
        )
    )
    print(f"photos: {', '.join(results['photos'])}; {results['request']}")
    print(
        f"{'run':28} {'rd':>2} {'c':>2} {'faces/s':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'x raw':>6} {'cpu/req':>8} {'cpu x':>6}"
    )
    for r in results["runs"]:
        print(
            f"{r['name']:28} {r.get('round', '-'):>2} {r['concurrency']:>2} {r['faces_per_s']:>8}"
            f" {r['requests_per_s']:>7} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['ratio_vs_raw']:>6}"
            f" {r.get('cpu_ms_per_req', '-'):>8} {r.get('cpu_ratio_vs_raw', '-'):>6}"
        )
    print("medians over rounds (x raw: faces/s ratio; cpu x: raw CPU per request / this one's)")
    print(f"{'run':28} {'c':>2} {'faces/s':>8} {'x raw':>6} {'cpu/req':>8} {'cpu x':>6}  ratios")
    for m in results["medians"]:
        print(
            f"{m['name']:28} {m['concurrency']:>2} {m['faces_per_s']:>8} {m['ratio_vs_raw']:>6}"
            f" {m['cpu_ms_per_req'] or '-':>8} {m['cpu_ratio_vs_raw'] or '-':>6}  {m['ratios']}"
        )
    print(f"face_recognition: {results['face_recognition']}")
    path = save(f"estimator_{int(time.time())}", results)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

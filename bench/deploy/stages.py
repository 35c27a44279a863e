"""Benchmark: the cost of each stage of detect + descriptor on ONE core, for capacity planning
(docs/SCALING.md): what a CPU estimator spends per face, and what stays on the estimator's CPU
when Triton runs the models (decode, letterbox, decode of detections, alignment).

Each stage runs alone in a loop on one onnxruntime thread (intra_op_num_threads=1), beside the
estimator core (Estimator.detect with a descriptor, its own sessions) on the same photo in the
same run. Prints and saves JSON under bench/results/. Not a test.

    python -m bench.deploy.stages [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from skimage import data

from services.estimator import align, detect
from services.estimator import model_repo as mr
from services.estimator.core import Estimator
from services.estimator.extract import sface_input


def summary(lat: list[float]) -> dict[str, float]:
    return {
        "calls": len(lat),
        "p50_ms": 1000 * statistics.median(lat),
        "mean_ms": 1000 * statistics.fmean(lat),
    }


def timed(fn: Callable[[], Any], seconds: float) -> dict[str, float]:
    fn()  # warm-up
    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
    return summary(lat)


def session(repo: Path, name: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    path = str(mr.model_path(repo, name))
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


async def estimator_core(repo: Path, rgb: np.ndarray, seconds: float) -> dict[str, float]:
    est = Estimator(repo_dir=repo, detector="yunet")
    await est.detect(rgb, estimations={"face_descriptor"})
    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        await est.detect(rgb, estimations={"face_descriptor"})
        lat.append(time.perf_counter() - t)
    await est.close()
    return summary(lat)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    repo = mr.models_dir()
    rgb = data.astronaut()
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    yunet, sface = session(repo, "yunet"), session(repo, "sface")
    names = [o.name for o in yunet.get_outputs()]
    blob, scale = detect.yunet_input(rgb)
    out = dict(zip(names, yunet.run(names, {"input": blob}), strict=True))
    dets = detect.yunet_decode(out, scale, rgb.shape[1], rgb.shape[0])
    assert len(dets) == 1, "the astronaut photo has one face"
    warp = align.warp_face(rgb, dets[0].landmarks5)
    one, batch = sface_input([warp]), sface_input([warp] * 32)
    width, height = rgb.shape[1], rgb.shape[0]
    steps: dict[str, Callable[[], Any]] = {
        "cpu_decode_jpeg": lambda: cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
        "cpu_yunet_letterbox": lambda: detect.yunet_input(rgb),
        "model_yunet_640": lambda: yunet.run(names, {"input": blob}),
        "cpu_yunet_decode": lambda: detect.yunet_decode(out, scale, width, height),
        "cpu_align_warp": lambda: align.warp_face(rgb, dets[0].landmarks5),
        "model_sface_batch1": lambda: sface.run(None, {"data": one}),
        "model_sface_batch32": lambda: sface.run(None, {"data": batch}),
    }
    stages = {name: timed(fn, args.seconds) for name, fn in steps.items()}
    stages["model_sface_batch32"]["per_face_ms"] = stages["model_sface_batch32"]["mean_ms"] / 32
    cpu = sum(v["mean_ms"] for k, v in stages.items() if k.startswith("cpu_"))
    model = stages["model_yunet_640"]["mean_ms"] + stages["model_sface_batch1"]["mean_ms"]
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "onnxruntime": ort.__version__,
            "load_average": os.getloadavg(),
        },
        "image": "skimage.data.astronaut (512x512, 1 face), JPEG-encoded for the decode stage",
        "stages_one_core": stages,
        "sum_cpu_stages_ms": cpu,
        "sum_model_stages_ms": model,
        "raw_faces_per_core_s": 1000 / (cpu + model),
        "cpu_left_with_triton_faces_per_core_s": 1000 / cpu,
        "estimator_core_detect_extract_c1": asyncio.run(estimator_core(repo, rgb, args.seconds)),
    }
    print(json.dumps(results, indent=2))
    out_dir = Path(__file__).resolve().parents[1] / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"deploy_stages_{int(time.time())}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: Estimator.detect(+extract) vs the raw onnxruntime calls of the same models.

Prints faces/s and p50/p99 latency for both on the same photos in the same run, and saves JSON
under bench/results/. Not a test.

    python bench/estimator/raw_onnx.py [--seconds 10] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.estimator import align, detect
from services.estimator import model_repo as mr
from services.estimator.core import Estimator
from services.estimator.extract import sface_input


def _pcts(lat: list[float]) -> dict[str, float]:
    s = sorted(lat)
    return {
        "p50_ms": 1000 * statistics.median(s),
        "p99_ms": 1000 * s[min(len(s) - 1, int(0.99 * len(s)))],
    }


def bench_raw(repo: Path, rgb: np.ndarray, seconds: float) -> dict[str, object]:
    """YuNet + SFace straight through onnxruntime sessions (numpy pre/post only)."""
    yunet = ort.InferenceSession(
        str(mr.model_path(repo, "yunet")), providers=["CPUExecutionProvider"]
    )
    sface = ort.InferenceSession(
        str(mr.model_path(repo, "sface")), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in yunet.get_outputs()]
    for _ in range(2):  # warm-up, as the estimator bench does
        yunet.run(names, {"input": detect.yunet_input(rgb)[0]})
        sface.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})
    lat, faces = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        blob, scale = detect.yunet_input(rgb)
        out = dict(zip(names, yunet.run(names, {"input": blob}), strict=True))
        dets = detect.yunet_decode(out, scale, rgb.shape[1], rgb.shape[0])
        warps = [align.warp_face(rgb, d.landmarks5) for d in dets]
        if warps:
            sface.run(None, {"data": sface_input(warps)})
        lat.append(time.perf_counter() - t)
        faces += len(dets)
    total = sum(lat)
    return {"requests": len(lat), "faces": faces, "faces_per_s": faces / total, **_pcts(lat)}


async def bench_estimator(
    repo: Path, rgb: np.ndarray, seconds: float, concurrency: int, estimations: set[str]
) -> dict[str, object]:
    est = Estimator(repo_dir=repo, detector="yunet")
    await est.detect(rgb, estimations=estimations)  # load sessions
    lat: list[float] = []
    faces = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal faces
        while time.perf_counter() < end:
            t = time.perf_counter()
            res = await est.detect(rgb, estimations=estimations)
            lat.append(time.perf_counter() - t)
            faces += len(res.faces)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    await est.close()
    return {"requests": len(lat), "faces": faces, "faces_per_s": faces / wall, **_pcts(lat)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--repo", type=Path, default=None)
    args = ap.parse_args()
    repo = (args.repo or mr.models_dir()).resolve()
    rgb = data.astronaut()
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "onnxruntime": ort.__version__,
        },
        "image": "skimage.data.astronaut (512x512, 1 face)",
    }
    results["raw_onnxruntime_detect_extract"] = bench_raw(repo, rgb, args.seconds)
    for c in (1, args.concurrency):
        results[f"estimator_detect_extract_c{c}"] = asyncio.run(
            bench_estimator(repo, rgb, args.seconds, c, {"face_descriptor"})
        )
    all_est = {
        "face_descriptor",
        "basic_attributes",
        "head_pose",
        "landmarks68",
        "emotions",
        "mask",
        "quality",
    }
    results["estimator_all_estimations_c1"] = asyncio.run(
        bench_estimator(repo, rgb, args.seconds, 1, all_est)
    )
    for k, v in results.items():
        print(f"{k}: {v}")
    out_dir = Path(__file__).resolve().parents[1] / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"estimator_raw_onnx_{int(time.time())}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

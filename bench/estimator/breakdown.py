"""Where an estimator request's time goes, stage by stage, next to raw onnxruntime's stages.

For each photo of `bench.estimator.run` (one request = one photo, detect + descriptor), every
stage of the service's path runs on its own, back to back, `--reps` times, on one thread, and
the median of its CPU time is printed in ms: decode (Pillow, as the service; cv2, as raw),
YuNet input, YuNet run, YuNet decode, alignment, SFace input, SFace run, sample encoding, the
protobuf reply (build + serialise) and the client's parse. At concurrency 8 the same work
shares 2 cores, so the sum of the stages' CPU, not one request's wall time, is what
throughput pays; `bench.estimator.run` reports the CPU per request of raw and of each service
in the same run.

    python -m bench.estimator.breakdown [--reps 20]

Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from luna.estimator.v1 import estimator_pb2 as epb

from bench.common import save
from bench.estimator.run import photos
from services.estimator import align, detect, images
from services.estimator import model_repo as mr
from services.estimator.extract import sface_input
from services.estimator.grpc_service import detections_pb
from services.estimator.results import Box, DetectResult, FaceResult


def median_ms(fn: Callable[[], object], reps: int) -> float:
    """Median CPU time of this thread (with one intra-op thread, onnxruntime computes in the
    calling thread): on a shared, loaded machine wall times measure the neighbours."""
    fn()
    times = []
    for _ in range(reps):
        t = time.thread_time()
        fn()
        times.append(time.thread_time() - t)
    return round(1000 * statistics.median(times), 3)


def session(repo: Any, name: str, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(
        str(mr.model_path(repo, name)), opts, providers=["CPUExecutionProvider"]
    )


def stages(name: str, encoded: bytes, reps: int, yunet: Any, sface: Any) -> dict[str, Any]:
    rgb = images.decode_image(encoded)
    out_names = [o.name for o in yunet.get_outputs()]
    blob, scale = detect.yunet_input(rgb)
    out = dict(zip(out_names, yunet.run(out_names, {"input": blob}), strict=True))
    dets = detect.yunet_decode(out, scale, rgb.shape[1], rgb.shape[0])
    warps = [align.warp_face(rgb, d.landmarks5) for d in dets]
    faces_in = sface_input(warps)
    desc = sface.run(None, {"data": faces_in})[0]
    samples = [images.encode_image(w) for w in warps]
    result = DetectResult(
        rgb.shape[1],
        rgb.shape[0],
        [
            FaceResult(
                Box(*map(float, d.box)),
                d.score,
                [(float(x), float(y)) for x, y in d.landmarks5],
                s,
                "jpeg",
                v.astype("<f4").tobytes(),
                200,
            )
            for d, s, v in zip(dets, samples, desc, strict=True)
        ],
        [],
    )
    reply = epb.DetectResponse(results=[epb.ImageResult(detections=detections_pb(result))])
    wire = reply.SerializeToString()
    row: dict[str, Any] = {"photo": name, "pixels": rgb.shape[0] * rgb.shape[1], "faces": len(dets)}
    row["decode_pillow"] = median_ms(lambda: images.decode_image(encoded), reps)
    row["decode_cv2"] = median_ms(
        lambda: cv2.cvtColor(
            cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
        ),
        reps,
    )
    row["header_pixels"] = median_ms(lambda: images.image_pixels(encoded), reps)
    row["yunet_input"] = median_ms(lambda: detect.yunet_input(rgb), reps)
    row["yunet_run"] = median_ms(lambda: yunet.run(out_names, {"input": blob}), reps)
    row["yunet_decode"] = median_ms(
        lambda: detect.yunet_decode(out, scale, rgb.shape[1], rgb.shape[0]), reps
    )
    row["align"] = median_ms(lambda: [align.warp_face(rgb, d.landmarks5) for d in dets], reps)
    row["sface_input"] = median_ms(lambda: sface_input(warps), reps)
    row["sface_run"] = median_ms(lambda: sface.run(None, {"data": faces_in}), reps)
    row["sample_jpeg"] = median_ms(lambda: [images.encode_image(w) for w in warps], reps)
    row["reply_pb"] = median_ms(
        lambda: epb.DetectResponse(
            results=[epb.ImageResult(detections=detections_pb(result))]
        ).SerializeToString(),
        reps,
    )
    row["client_parse"] = median_ms(lambda: epb.DetectResponse.FromString(wire), reps)
    row["reply_bytes"] = len(wire)
    return row


KEYS = (
    "decode_pillow", "decode_cv2", "header_pixels", "yunet_input", "yunet_run", "yunet_decode",
    "align", "sface_input", "sface_run", "sample_jpeg", "reply_pb", "client_parse",
)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of the sessions")
    args = ap.parse_args()
    repo = mr.models_dir()
    yunet, sface = session(repo, "yunet", args.threads), session(repo, "sface", args.threads)
    rows = [stages(n, img, args.reps, yunet, sface) for n, img in photos(repo)]
    print(f"median CPU ms per stage, one thread, intra-op threads {args.threads}")
    print(f"{'stage':14}" + "".join(f"{r['photo'][:14]:>16}" for r in rows))
    for k in ("pixels", "faces", *KEYS, "reply_bytes"):
        print(f"{k:14}" + "".join(f"{r[k]:>16}" for r in rows))
    service = ("decode_pillow", "header_pixels", "yunet_input", "yunet_run", "yunet_decode",
               "align", "sface_input", "sface_run", "sample_jpeg", "reply_pb")  # fmt: skip
    raw = ("decode_cv2", "yunet_input", "yunet_run", "yunet_decode", "align", "sface_input",
           "sface_run")  # fmt: skip
    sums = {
        "service_stages_ms": round(sum(r[k] for r in rows for k in service) / len(rows), 2),
        "raw_stages_ms": round(sum(r[k] for r in rows for k in raw) / len(rows), 2),
    }
    print(f"mean over photos: service stages {sums['service_stages_ms']} ms, "
          f"raw stages {sums['raw_stages_ms']} ms")  # fmt: skip
    path = save(f"estimator_breakdown_{int(time.time())}", {"rows": rows, **sums})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CPU per item of each batchable model, alone and in a batch: does concatenating pay on CPU?

Every model of the repository with a free batch dim runs on random input at batch 1 and at
`--batch` (default 8), in one onnxruntime session with one intra-op thread and no spinning
(as the estimator's workers run them); the median CPU time of the calling thread per item is
printed, with the ratio batch / alone (< 1: a batch is cheaper per item). The estimator's
`LUNA_ESTIMATOR_BATCH_MODELS=auto` concatenates requests on CPU only for the models this
shows below 1. Saves JSON under bench/results/. Not a test.

    python -m bench.estimator.batch_cost [--batch 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort

from bench.common import save
from services.estimator import model_repo as mr


def session(path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def per_item_ms(sess: ort.InferenceSession, name: str, x: np.ndarray, rounds: int) -> float:
    """Median over rounds of the median CPU ms per item of one call at x's batch size."""
    sess.run(None, {name: x})
    b = x.shape[0]
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(max(2, 16 // b)):
            t = time.thread_time()
            sess.run(None, {name: x})
            times.append(time.thread_time() - t)
        medians.append(1000 * statistics.median(times) / b)
    return round(statistics.median(medians), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    repo = mr.models_dir()
    manifest = mr.load_manifest(repo) or {}
    rows = []
    rng = np.random.default_rng(0)
    print(
        f"{'model':14} {'input':>16} {'b1 ms/item':>11} {f'b{args.batch} ms/item':>11} {'ratio':>6}"
    )
    for name, entry in dict(manifest.get("models", {})).items():  # type: ignore[arg-type]
        if not entry.get("dynamic_batch"):
            continue
        inp = entry["inputs"][0]
        dims = [int(d) if d > 0 else 640 for d in inp["dims"][1:]]  # RetinaFace: 640 frames
        x = (rng.uniform(0, 255, (args.batch, *dims))).astype(inp["dtype"])
        sess = session(str(mr.model_path(repo, name)))
        alone = per_item_ms(sess, inp["name"], x[:1], args.rounds)
        batched = per_item_ms(sess, inp["name"], x, args.rounds)
        row = {
            "model": name,
            "input": dims,
            "b1_ms_per_item": alone,
            f"b{args.batch}_ms_per_item": batched,
            "ratio": round(batched / alone, 2),
        }
        rows.append(row)
        print(f"{name:14} {dims!s:>16} {alone:>11} {batched:>11} {row['ratio']:>6}")
    path = save(f"estimator_batch_cost_{int(time.time())}", {"batch": args.batch, "rows": rows})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

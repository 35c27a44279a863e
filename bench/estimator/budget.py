"""Benchmark: a small detect request alone (the limit) and while one large upload of
zero-filled 6000x6600 PNGs runs in the same estimator (issue 9, defect 3), in-process with the
real models. Reports small-request latencies, the large request's time, the pixel budget's peak
and the process's RSS growth. Not a test.

    python -m bench.estimator.budget [--large 4] [--small 20]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time

import psutil
from PIL import Image
from skimage import data

from bench.common import save
from services.estimator import settings
from services.estimator.core import Estimator


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "n": len(ordered),
    }


async def main(large: int, small: int) -> dict[str, object]:
    est = Estimator(
        detector="yunet",
        inflight_pixels=settings.INFLIGHT_PIXELS.get_int(),
        limits=settings.image_limits(),
    )
    small_img, big_img = _jpeg(), _png((6000, 6600))
    proc = psutil.Process()
    await est.detect(small_img, content_type="image/jpeg")  # warm the sessions

    async def one_small() -> float:
        started = time.perf_counter()
        await est.detect(small_img, content_type="image/jpeg")
        return time.perf_counter() - started

    alone = [await one_small() for _ in range(small)]
    print(f"small alone: {_ms(alone)}", flush=True)

    rss_before = proc.memory_info().rss
    peak_rss = rss_before
    est.budget.peak = 0
    started = time.perf_counter()
    big = asyncio.gather(*(est.detect(big_img, content_type="image/png") for _ in range(large)))
    under_load = []
    while not big.done():
        under_load.append(await one_small())
        peak_rss = max(peak_rss, proc.memory_info().rss)
        await asyncio.sleep(0.05)
    await big
    large_s = time.perf_counter() - started
    print(f"small during {large} large images ({large_s:.1f} s): {_ms(under_load)}", flush=True)
    await est.close()
    return {
        "large_images": large,
        "large_image_pixels": 6000 * 6600,
        "large_request_s": round(large_s, 2),
        "small_alone": _ms(alone),
        "small_during_large": _ms(under_load),
        "inflight_budget_pixels": est.budget.capacity,
        "budget_peak_pixels": est.budget.peak,
        "rss_growth_mb": round((peak_rss - rss_before) / 2**20, 1),
        "request_limit_pixels": est.limits.request_pixels,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--small", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(main(args.large, args.small))
    print(save("estimator_budget", result))

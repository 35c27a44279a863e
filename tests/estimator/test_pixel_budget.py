"""Decoded pixels are bounded per request and in flight per estimator (issue 9, defect 3): one
upload of 64 zero-filled 6000x6600 PNGs (115 KB each) must not take gigabytes, and a small
request must stay responsive while large images are processed."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from luna.estimator.v1 import estimator_pb2 as pb
from luna.estimator.v1 import estimator_pb2_grpc
from PIL import Image

from services.common import errors, grpc_client
from services.common.grpc_server import ErrorInterceptor
from services.estimator import images
from services.estimator.budget import PixelBudget
from services.estimator.core import Estimator
from services.estimator.grpc_service import EstimatorServicer

BIG = (6000, 6600)  # 39.6 megapixels: within the per-image limit (40 M)


@pytest.fixture(scope="module")
def zero_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", BIG).save(buf, format="PNG")
    data = buf.getvalue()
    assert len(data) < 200_000  # tiny on the wire, 119 MB decoded
    return data


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# --- the budget itself --------------------------------------------------------------------
async def test_budget_never_exceeds_capacity_and_small_ones_overtake() -> None:
    budget = PixelBudget(100)
    order: list[str] = []

    async def job(name: str, pixels: int, seconds: float) -> None:
        async with budget.hold(pixels):
            assert budget.used <= budget.capacity
            order.append(name)
            await asyncio.sleep(seconds)

    first = asyncio.create_task(job("big1", 80, 0.2))
    await asyncio.sleep(0.01)
    later = [
        asyncio.create_task(job("big2", 80, 0.01)),  # waits for big1
        asyncio.create_task(job("small", 10, 0.01)),  # fits next to big1: goes first
        asyncio.create_task(job("huge", 500, 0.01)),  # over capacity: runs alone, later
    ]
    await asyncio.gather(first, *later)
    assert order.index("small") < order.index("big2")
    assert order[0] == "big1" and budget.peak <= 100 and budget.used == 0


async def test_cancelled_requests_give_their_share_back() -> None:
    budget = PixelBudget(10)
    holder_in = asyncio.Event()

    async def holder() -> None:
        async with budget.hold(10):
            holder_in.set()
            await asyncio.sleep(10)

    h = asyncio.create_task(holder())
    await holder_in.wait()
    waiter = asyncio.create_task(_hold(budget, 5))
    await asyncio.sleep(0.01)
    waiter.cancel()
    h.cancel()
    for t in (waiter, h):
        with pytest.raises(asyncio.CancelledError):
            await t
    assert budget.used == 0
    await asyncio.wait_for(_hold(budget, 10), 1)  # the whole budget is free again


async def test_a_large_waiter_is_not_starved_by_a_stream_of_small_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.estimator.budget.OVERTAKE_FOR_S", 0.1)
    budget = PixelBudget(10)
    stop = asyncio.Event()

    async def small_stream() -> None:
        while not stop.is_set():
            tasks = [asyncio.create_task(_hold(budget, 3, 0.02)) for _ in range(3)]
            await asyncio.sleep(0.01)
            await asyncio.gather(*tasks)

    streams = [asyncio.create_task(small_stream()) for _ in range(2)]
    await asyncio.sleep(0.05)
    await asyncio.wait_for(_hold(budget, 10), 2)
    stop.set()
    await asyncio.gather(*streams)


async def test_small_images_never_wait_behind_large_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.estimator.budget.OVERTAKE_FOR_S", 0.05)
    budget = PixelBudget(80_000_000)
    big = BIG[0] * BIG[1]
    running = [asyncio.create_task(_hold(budget, big, 1.0)) for _ in range(4)]
    await asyncio.sleep(0.2)  # a large image holds the large lane, three wait (starving)
    assert budget.used >= big
    started = time.perf_counter()
    await asyncio.wait_for(_hold(budget, 512 * 512), 0.5)
    assert time.perf_counter() - started < 0.1
    await asyncio.gather(*running)
    assert budget.peak <= budget.capacity and budget.used == 0


async def _hold(budget: PixelBudget, pixels: int, seconds: float = 0.0) -> None:
    async with budget.hold(pixels):
        await asyncio.sleep(seconds)


# --- images: sizes from headers -------------------------------------------------------------
def test_size_comes_from_the_header_without_decoding(zero_png: bytes) -> None:
    started = time.perf_counter()
    assert images.image_pixels(zero_png, "image/png") == BIG[0] * BIG[1]
    assert time.perf_counter() - started < 0.1  # a decode takes about a second
    assert images.image_pixels(b"not an image", "image/png") == 0
    images.check_request_pixels([BIG[0] * BIG[1]] * 5)  # 198 M: within the default 200 M
    with pytest.raises(errors.LunaError) as err:
        images.check_request_pixels([BIG[0] * BIG[1]] * 64)
    assert err.value.code == 12031 and err.value.http_status == 400
    assert "LUNA_MAX_REQUEST_PIXELS" in err.value.detail


# --- the estimator under a large upload -----------------------------------------------------
@pytest.fixture(scope="module")
async def served(model_repo: Path) -> AsyncIterator[tuple[Estimator, object]]:
    est = Estimator(repo_dir=model_repo, detector="yunet")
    est.budget = PixelBudget(BIG[0] * BIG[1] + 5_000_000)  # one large image at a time
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor()], options=grpc_client.GRPC_OPTIONS
    )  # the 64 MB message limit of the real server
    estimator_pb2_grpc.add_EstimatorServiceServicer_to_server(EstimatorServicer(est), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc_client.channel("estimator", f"127.0.0.1:{port}")
    yield est, grpc_client.stub(estimator_pb2_grpc.EstimatorServiceStub, channel)
    await channel.close()
    await server.stop(grace=None)
    await est.close()


async def test_the_64_image_upload_is_refused_before_decoding_anything(served, zero_png) -> None:
    est, stub = served
    request = pb.DetectRequest(
        images=[pb.Image(data=zero_png, content_type="image/png", filename=f"{i}.png")
                for i in range(64)],
        detect_face=True,
    )  # fmt: skip
    started = time.perf_counter()
    with pytest.raises(errors.LunaError) as err:
        await stub.Detect(request)
    assert time.perf_counter() - started < 3.0  # was 44 s
    assert err.value.code == 12031 and err.value.http_status == 400
    assert est.budget.peak == 0  # not one image was decoded


async def test_large_images_are_decoded_within_the_budget_and_small_requests_pass(
    served, zero_png, astronaut
) -> None:
    est, stub = served
    est.budget.peak = 0
    big = pb.DetectRequest(
        images=[pb.Image(data=zero_png, content_type="image/png", filename=f"{i}.png")
                for i in range(4)],
        detect_face=True,
    )  # fmt: skip
    small = pb.DetectRequest(
        images=[pb.Image(data=jpeg(astronaut), content_type="image/jpeg")],
        detect_face=True,
        estimations=["face_descriptor"],
    )
    started = time.perf_counter()
    big_call = asyncio.ensure_future(stub.Detect(big))
    await asyncio.sleep(0.5)  # the large request is decoding
    small_started = time.perf_counter()
    reply = await stub.Detect(small)
    small_s = time.perf_counter() - small_started
    assert len(reply.results[0].detections.faces) == 1
    assert not big_call.done()  # the small request did not wait for the large one
    big_reply = await big_call
    big_s = time.perf_counter() - started
    assert [len(r.detections.faces) for r in big_reply.results] == [0, 0, 0, 0]
    assert all(r.detections.image_width == BIG[0] for r in big_reply.results)
    # Never more than the budget decoded at once (4 images would be 158 M pixels).
    assert est.budget.peak <= est.budget.capacity
    print(f"small request {small_s:.2f} s during a large one of {big_s:.2f} s; "
          f"peak {est.budget.peak} of {est.budget.capacity} pixels")  # fmt: skip
    assert small_s < max(2.0, big_s / 3), (small_s, big_s)


async def test_a_large_sample_is_refused_from_its_header(served, zero_png) -> None:
    _, stub = served
    request = pb.ExtractRequest(samples=[pb.Sample(data=zero_png, content_type="image/png")])
    started = time.perf_counter()
    with pytest.raises(errors.LunaError) as err:
        await stub.Extract(request)
    assert err.value.code == errors.BAD_SAMPLE_SIZE
    assert time.perf_counter() - started < 0.5  # a decode of it takes over a second

"""Backends: request batching in onnxruntime, and the Triton path via the KServe test server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from services.estimator.backends import (
    OnnxRuntimeBackend,
    TritonBackend,
    batch_models_for,
    make_backend,
)
from services.estimator.core import Estimator
from services.estimator.kserve_server import start_server

ALL = {
    "face_descriptor",
    "basic_attributes",
    "head_pose",
    "landmarks68",
    "emotions",
    "mask",
    "quality",
    "liveness",
}


@pytest.fixture(scope="module")
async def kserve(model_repo: Path) -> AsyncIterator[str]:
    server, port = await start_server(model_repo, port=0)
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_concurrent_requests_are_batched(model_repo: Path) -> None:
    be = OnnxRuntimeBackend(model_repo, batch_window_s=0.01, batch_models="all")
    calls: list[int] = []
    run = be.run_sync

    def spy(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(next(iter(inputs.values())).shape[0])
        return run(model, inputs)

    be.run_sync = spy  # type: ignore[method-assign]
    rng = np.random.default_rng(1)
    xs = [rng.uniform(0, 255, (n, 3, 112, 112)).astype(np.float32) for n in (1, 2, 1, 3)]
    outs = await asyncio.gather(*(be.infer("sface", {"data": x}) for x in xs))
    assert calls == [7]  # one model run for four requests
    for x, o in zip(xs, outs, strict=True):
        single = run("sface", {"data": x})["fc1"]
        assert o["fc1"].shape == (x.shape[0], 128)
        np.testing.assert_allclose(o["fc1"], single, atol=1e-4)
    # a fixed-batch model is never concatenated
    calls.clear()
    face = np.zeros((1, 256, 256, 3), np.float32)
    await asyncio.gather(*(be.infer("liveness", {"input": face}) for _ in range(2)))
    assert calls == [1, 1]
    await be.close()


async def test_cpu_concatenates_only_models_that_gain(model_repo: Path) -> None:
    """`auto` on CPU: age and tddfa calls share runs, SFace and YuNet calls run alone
    (batched, they cost more CPU per face or frame than alone); `none` turns it off."""
    be = OnnxRuntimeBackend(model_repo, batch_window_s=0.01)
    assert be.is_batched("sface") and be.is_batched("yunet")
    assert not be.concatenates("sface") and not be.concatenates("yunet")
    assert be.concatenates("age") and be.concatenates("tddfa") and not be.concatenates("gender")
    calls: list[tuple[str, int]] = []
    run = be.run_sync

    def spy(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append((model, next(iter(inputs.values())).shape[0]))
        return run(model, inputs)

    be.run_sync = spy  # type: ignore[method-assign]
    x = {"data": np.zeros((2, 3, 112, 112), np.float32)}
    a = {"images": np.zeros((1, 3, 64, 64), np.float32)}
    await asyncio.gather(*(be.infer("sface", x) for _ in range(3)))
    await asyncio.gather(*(be.infer("age", a) for _ in range(3)))
    assert calls == [("sface", 2)] * 3 + [("age", 3)]
    await be.close()
    off = OnnxRuntimeBackend(model_repo, batch_window_s=0.01, batch_models="none")
    assert not any(off.concatenates(m) for m in ("age", "gender", "tddfa", "sface"))
    await off.close()
    assert batch_models_for("auto", "cuda") is None and batch_models_for("all", "cpu") is None
    assert batch_models_for("sface, age", "cpu") == {"sface", "age"}


async def test_detector_batches_across_requests(model_repo: Path) -> None:
    """YuNet's batch dim is free since the install-time Reshape edit: letterboxed frames of
    concurrent requests run as one batch, with the outputs each would get alone."""
    be = OnnxRuntimeBackend(model_repo, batch_window_s=0.01, batch_models="all")
    assert be.is_batched("yunet")
    calls: list[int] = []
    run = be.run_sync

    def spy(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(next(iter(inputs.values())).shape[0])
        return run(model, inputs)

    be.run_sync = spy  # type: ignore[method-assign]
    rng = np.random.default_rng(3)
    blobs = [rng.uniform(0, 255, (1, 3, 640, 640)).astype(np.float32) for _ in range(3)]
    outs = await asyncio.gather(*(be.infer("yunet", {"input": b}) for b in blobs))
    assert calls == [3]
    for b, o in zip(blobs, outs, strict=True):
        alone = run("yunet", {"input": b})
        assert set(o) == set(alone)
        for k in alone:
            assert o[k].shape == alone[k].shape
            np.testing.assert_allclose(o[k], alone[k], atol=1e-5)
    await be.close()


@pytest.mark.parametrize("threads", [1, 2])
async def test_runs_are_bounded_by_the_workers(model_repo: Path, threads: int) -> None:
    """However many requests wait, no more model runs are in progress than workers: concurrent
    requests never oversubscribe the cores. Sessions compute on one thread without spinning."""
    be = OnnxRuntimeBackend(model_repo, batch_window_s=0, threads=threads)
    sess = be.session("sface")
    opts = sess.get_session_options()  # type: ignore[attr-defined]
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    lock = threading.Lock()
    running, peak = [0], [0]
    run = be.run_sync

    def spy(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.01)  # long enough for the others to pile up if they could
            return run(model, inputs)
        finally:
            with lock:
                running[0] -= 1

    be.run_sync = spy  # type: ignore[method-assign]
    x = np.zeros((1, 3, 112, 112), np.float32)
    g = np.zeros((1, 3, 32, 32), np.float32)
    calls = [be.infer("sface", {"data": x}) for _ in range(6)]
    calls += [be.infer("gender", {"images": g}) for _ in range(6)]
    outs = await asyncio.gather(*calls)
    assert len(outs) == 12 and peak[0] == threads
    await be.close()


async def test_oldest_call_goes_first_across_models(model_repo: Path) -> None:
    """One worker, busy: the calls queued behind it start in the order they arrived, whatever
    their model (a request's descriptor is not starved by newer requests' detections)."""
    be = OnnxRuntimeBackend(model_repo, batch_window_s=0, threads=1)
    order: list[str] = []
    run = be.run_sync

    def spy(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        order.append(model)
        return run(model, inputs)

    be.run_sync = spy  # type: ignore[method-assign]
    x = {"data": np.zeros((1, 3, 112, 112), np.float32)}
    g = {"images": np.zeros((1, 3, 32, 32), np.float32)}
    first = asyncio.ensure_future(be.infer("sface", x))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # running now
    rest = []
    for model, inputs in (("gender", g), ("sface", x), ("gender", g)):
        rest.append(asyncio.ensure_future(be.infer(model, inputs)))
        await asyncio.sleep(0.001)
    await asyncio.gather(first, *rest)
    assert order == ["sface", "gender", "sface", "gender"]
    await be.close()


async def test_batching_off_max_batch_and_busy_queue(model_repo: Path) -> None:
    rng = np.random.default_rng(2)
    xs = [rng.uniform(0, 255, (n, 3, 112, 112)).astype(np.float32) for n in (1, 2, 1, 3)]

    def spied(be: OnnxRuntimeBackend) -> list[int]:
        calls: list[int] = []
        run = be.run_sync

        def spy(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            calls.append(next(iter(inputs.values())).shape[0])
            return run(model, inputs)

        be.run_sync = spy  # type: ignore[method-assign]
        return calls

    # window 0: batching off, every request runs on its own
    off = OnnxRuntimeBackend(model_repo, batch_window_s=0)
    calls = spied(off)
    outs = await asyncio.gather(*(off.infer("sface", {"data": x}) for x in xs))
    assert sorted(calls) == [1, 1, 2, 3]
    assert [o["fc1"].shape[0] for o in outs] == [1, 2, 1, 3]
    await off.close()
    # max_batch caps the rows of one run; requests are never split
    capped = OnnxRuntimeBackend(model_repo, batch_window_s=0.01, max_batch=4, batch_models="all")
    calls = spied(capped)
    outs = await asyncio.gather(*(capped.infer("sface", {"data": x}) for x in xs))
    assert sum(calls) == 7 and max(calls) <= 4 and len(calls) == 2
    assert [o["fc1"].shape[0] for o in outs] == [1, 2, 1, 3]
    await capped.close()
    # while a run is in flight, newcomers queue and go together when it finishes
    busy = OnnxRuntimeBackend(model_repo, batch_window_s=5.0, batch_models="all")
    calls = spied(busy)
    first = asyncio.ensure_future(busy.infer("sface", {"data": xs[0]}))
    await asyncio.sleep(0)  # the idle model starts the first request alone
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(busy.infer("sface", {"data": x})) for x in xs[1:]]
    done = await asyncio.wait_for(asyncio.gather(first, *rest), 4.0)  # not the 5 s window
    assert calls == [1, 6]
    assert [o["fc1"].shape[0] for o in done] == [1, 2, 1, 3]
    await busy.close()


async def test_batch_errors_reach_every_caller(model_repo: Path) -> None:
    be = OnnxRuntimeBackend(model_repo)
    bad = {"data": np.zeros((1, 3, 50, 50), np.float32)}
    results = await asyncio.gather(
        be.infer("sface", bad), be.infer("sface", bad), return_exceptions=True
    )
    assert all(isinstance(r, Exception) for r in results)
    with pytest.raises(FileNotFoundError):
        await be.infer("nope", bad)
    await be.close()


def test_backend_selection(model_repo: Path) -> None:
    assert isinstance(make_backend(repo_dir=model_repo), OnnxRuntimeBackend)  # the default
    assert isinstance(make_backend("onnxruntime", model_repo), OnnxRuntimeBackend)
    assert isinstance(make_backend("triton", model_repo, url="127.0.0.1:1"), TritonBackend)
    with pytest.raises(ValueError):
        make_backend("tensorrt", repo_dir=model_repo)


async def test_kserve_server_metadata(kserve: str) -> None:
    client = grpcclient.InferenceServerClient(kserve)
    assert await client.is_server_live() and await client.is_server_ready()
    assert await client.is_model_ready("sface") and not await client.is_model_ready("nope")
    meta = await client.get_model_metadata("sface")
    assert meta.inputs[0].name == "data" and list(meta.inputs[0].shape) == [-1, 3, 112, 112]
    cfg = await client.get_model_config("sface")
    assert cfg.config.max_batch_size == 32 and list(cfg.config.input[0].dims) == [3, 112, 112]
    with pytest.raises(InferenceServerException) as ei:
        await client.get_model_metadata("nope")
    assert "unknown model" in str(ei.value)
    await client.close()


async def test_triton_backend_matches_onnxruntime(
    kserve: str,
    model_repo: Path,
    estimator: Estimator,
    astronaut: np.ndarray,
    load_image: Callable[[str], np.ndarray],
) -> None:
    triton = Estimator(
        TritonBackend(kserve, model_repo), model_repo, detector="yunet", sample_format="png"
    )
    for img in (astronaut, load_image("p3.jpg")):
        a = await estimator.detect(img, estimations=ALL, detect_body=True)
        b = await triton.detect(img, estimations=ALL, detect_body=True)
        assert len(a.faces) == len(b.faces) and len(a.bodies) == len(b.bodies)
        for fa, fb in zip(a.faces, b.faces, strict=True):
            da = np.frombuffer(fa.descriptor or b"", "<f4")
            db = np.frombuffer(fb.descriptor or b"", "<f4")
            np.testing.assert_allclose(da, db, atol=1e-4)
            assert fa.estimations["basic_attributes"] == fb.estimations["basic_attributes"]
            for k in ("pitch", "roll", "yaw"):
                assert abs(fa.estimations["head_pose"][k] - fb.estimations["head_pose"][k]) < 1e-3  # type: ignore[index]
        # The second descriptor model (version 201) through the server, batched.
        samples = [f.sample for f in a.faces]
        ma = await estimator.extract(samples, 201)
        mb = await triton.extract(samples, 201)
        for x, y in zip(ma, mb, strict=True):
            assert x.version == y.version == 201
            np.testing.assert_allclose(x.as_array(), y.as_array(), atol=1e-4)
    await triton.close()


async def test_triton_backend_reports_server_errors(kserve: str, model_repo: Path) -> None:
    be = TritonBackend(kserve, model_repo)
    with pytest.raises((InferenceServerException, grpc.RpcError)):
        await be.infer("sface", {"data": np.zeros((1, 3, 50, 50), np.float32)})
    await be.close()

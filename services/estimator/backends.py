"""Inference backends behind one interface: in-process ONNX Runtime and Triton (KServe v2 gRPC).

The ONNX Runtime backend batches concurrent requests itself, as Triton's dynamic batcher does
server-side: requests for a model with a free batch dim are queued, concatenated (up to
`max_batch` rows), run once in a worker thread, and split back. A request for an idle model
goes at the next turn of the event loop (so requests arriving together still share a run, and a
lone request waits for nothing); while a run of that model is in flight, newcomers queue until
it finishes or `batch_window_s` has passed, whichever is first. A window of 0 turns batching
off (every request runs on its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.estimator import model_repo as mr
from services.estimator.metrics import observed

MAX_BATCH = mr.MAX_BATCH_SIZE
DEFAULT_BATCH_WAIT_MS = 2.0  # LUNA_ESTIMATOR_BATCH_WAIT_MS


# Defaults of LUNA_ESTIMATOR_BACKEND, LUNA_ESTIMATOR_DEVICE and LUNA_TRITON_URL (the app reads
# the settings, services/estimator/settings.py, and passes their values in).
DEFAULT_BACKEND = "onnxruntime"
DEFAULT_DEVICE = "cpu"
DEFAULT_TRITON_URL = "127.0.0.1:8001"


class InferenceBackend(ABC):
    """Runs one model of the repository on named numpy inputs."""

    @abstractmethod
    async def infer(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name; for batched models row i of each output belongs to input row i."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions / channels."""


def _dynamic_models(repo_dir: Path) -> set[str]:
    manifest = mr.load_manifest(repo_dir) or {}
    models = manifest.get("models", {})
    if isinstance(models, dict):
        return {n for n, m in models.items() if m.get("dynamic_batch")}
    return {m.name for m in mr.MODELS if m.dynamic_batch}


@dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    future: asyncio.Future[dict[str, np.ndarray]]
    rows: int


@dataclass
class _Batcher:
    queue: list[_Pending] = field(default_factory=list)
    rows: int = 0  # rows queued
    inflight: int = 0  # runs of this model in progress
    flusher: asyncio.TimerHandle | asyncio.Handle | None = None


class OnnxRuntimeBackend(InferenceBackend):
    """In-process onnxruntime over the same model repository Triton would serve."""

    def __init__(
        self,
        repo_dir: Path | None = None,
        *,
        device: str | None = None,
        batch_window_s: float = DEFAULT_BATCH_WAIT_MS / 1000,
        max_batch: int = MAX_BATCH,
        threads: int | None = None,
        intra_op_threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        self._ort = ort
        self.repo_dir = (repo_dir or mr.models_dir()).resolve()
        self.device = (device or DEFAULT_DEVICE).lower()
        self.batch_window_s = batch_window_s
        self.max_batch = max(1, max_batch)
        self.intra_op_threads = intra_op_threads
        self._dynamic = _dynamic_models(self.repo_dir)
        self._sessions: dict[str, object] = {}
        self._batchers: dict[str, _Batcher] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(
            max_workers=threads or max(2, min(8, os.cpu_count() or 2)),
            thread_name_prefix="ort",
        )
        avail = ort.get_available_providers()
        if self.device == "cuda" and "CUDAExecutionProvider" in avail:
            self.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            self.providers = ["CPUExecutionProvider"]

    def session(self, model: str) -> object:
        sess = self._sessions.get(model)
        if sess is None:
            path = mr.model_path(self.repo_dir, model)
            if not path.is_file():
                raise FileNotFoundError(f"model {model!r} not in repository {self.repo_dir}")
            opts = self._ort.SessionOptions()
            opts.intra_op_num_threads = self.intra_op_threads
            opts.log_severity_level = 3
            sess = self._ort.InferenceSession(str(path), opts, providers=self.providers)
            self._sessions[model] = sess
        return sess

    def warmup(self, models: list[str]) -> None:
        for m in models:
            self.session(m)

    def is_batched(self, model: str) -> bool:
        return model in self._dynamic

    def run_sync(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sess = self.session(model)
        names = [o.name for o in sess.get_outputs()]  # type: ignore[attr-defined]
        outs = sess.run(names, inputs)  # type: ignore[attr-defined]
        return dict(zip(names, outs, strict=True))

    async def _run(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        loop = asyncio.get_running_loop()
        rows = int(next(iter(inputs.values())).shape[0]) if inputs else 0
        return await observed(
            model,
            rows,
            lambda: loop.run_in_executor(self._executor, self.run_sync, model, inputs),
        )

    async def infer(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.session(model)  # fail fast (in the caller) for an unknown model
        if not self.is_batched(model):
            return await self._run(model, inputs)
        rows = int(next(iter(inputs.values())).shape[0])
        if rows >= self.max_batch:
            return await self._run_chunked(model, inputs, rows)
        if self.batch_window_s <= 0:  # batching off
            return await self._run(model, inputs)
        loop = asyncio.get_running_loop()
        pending = _Pending(inputs, loop.create_future(), rows)
        b = self._batchers.setdefault(model, _Batcher())
        b.queue.append(pending)
        b.rows += rows
        if b.rows >= self.max_batch:
            self._flush(model)
        elif b.flusher is None:
            if b.inflight == 0:
                # Idle model: go at the next loop turn, with whatever arrived in this one.
                b.flusher = loop.call_soon(self._flush, model)
            else:
                # Busy: wait for the run in flight to finish (it flushes), at most the window.
                b.flusher = loop.call_later(self.batch_window_s, self._flush, model)
        return await pending.future

    async def _run_chunked(
        self, model: str, inputs: dict[str, np.ndarray], rows: int
    ) -> dict[str, np.ndarray]:
        parts = []
        for start in range(0, rows, self.max_batch):
            chunk = {k: v[start : start + self.max_batch] for k, v in inputs.items()}
            parts.append(await self._run(model, chunk))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _flush(self, model: str) -> None:
        b = self._batchers[model]
        if b.flusher is not None:
            b.flusher.cancel()
            b.flusher = None
        while b.queue:
            # At most max_batch rows per run; requests only concatenate when their non-batch
            # dims agree (e.g. RetinaFace inputs of different sizes run separately).
            batch: list[_Pending] = []
            rows = 0
            while b.queue and (not batch or rows + b.queue[0].rows <= self.max_batch):
                p = b.queue.pop(0)
                batch.append(p)
                rows += p.rows
            b.rows -= rows
            groups: dict[tuple[object, ...], list[_Pending]] = {}
            for p in batch:
                key = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(p.inputs.items()))
                groups.setdefault(key, []).append(p)
            for group in groups.values():
                b.inflight += 1
                task = asyncio.create_task(self._run_group(model, b, group))
                # keep a reference until done: the loop holds tasks only weakly
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run_group(self, model: str, b: _Batcher, group: list[_Pending]) -> None:
        try:
            if len(group) == 1:
                merged = group[0].inputs
            else:
                merged = {k: np.concatenate([p.inputs[k] for p in group]) for k in group[0].inputs}
            out = await self._run(model, merged)
        except Exception as e:  # delivered to every waiter; each caller re-raises it
            for p in group:
                if not p.future.done():
                    p.future.set_exception(e)
        else:
            start = 0
            for p in group:
                part = {k: v[start : start + p.rows] for k, v in out.items()}
                start += p.rows
                if not p.future.done():
                    p.future.set_result(part)
        finally:
            b.inflight -= 1
            if b.queue:
                self._flush(model)  # what queued behind this run goes now

    async def close(self) -> None:
        for b in self._batchers.values():
            if b.flusher is not None:
                b.flusher.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._sessions.clear()


_NP_TO_KSERVE = {
    "float32": "FP32",
    "float16": "FP16",
    "float64": "FP64",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "int8": "INT8",
    "bool": "BOOL",
}


class TritonBackend(InferenceBackend):
    """Triton Inference Server (or any KServe v2 gRPC server) via tritonclient.grpc.aio."""

    def __init__(self, url: str | None = None, repo_dir: Path | None = None) -> None:
        import tritonclient.grpc.aio as grpcclient

        self._mod = grpcclient
        self.url = url or DEFAULT_TRITON_URL
        self._client = grpcclient.InferenceServerClient(self.url)
        self.repo_dir = (repo_dir or mr.models_dir()).resolve()
        self._dynamic = _dynamic_models(self.repo_dir)

    async def ready(self) -> bool:
        with contextlib.suppress(Exception):
            return bool(await self._client.is_server_ready())
        return False

    async def _infer_once(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        req = []
        for name, arr in inputs.items():
            arr = np.ascontiguousarray(arr)
            t = self._mod.InferInput(name, list(arr.shape), _NP_TO_KSERVE[arr.dtype.name])
            t.set_data_from_numpy(arr)
            req.append(t)
        rows = int(next(iter(inputs.values())).shape[0]) if inputs else 0
        result = await observed(model, rows, lambda: self._client.infer(model, req))
        resp = result.get_response()
        return {o.name: result.as_numpy(o.name) for o in resp.outputs}

    async def infer(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = int(next(iter(inputs.values())).shape[0])
        if model not in self._dynamic or rows <= MAX_BATCH:
            return await self._infer_once(model, inputs)
        parts = [
            await self._infer_once(model, {k: v[s : s + MAX_BATCH] for k, v in inputs.items()})
            for s in range(0, rows, MAX_BATCH)
        ]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    async def close(self) -> None:
        await self._client.close()


def make_backend(
    name: str | None = None,
    repo_dir: Path | None = None,
    *,
    device: str | None = None,
    url: str | None = None,
    **kwargs: object,
) -> InferenceBackend:
    """The backend `name` (onnxruntime or triton); the app passes the settings' values, a
    missing one is its setting's default."""
    kind = (name or DEFAULT_BACKEND).lower()
    if kind == "onnxruntime":
        return OnnxRuntimeBackend(repo_dir, device=device, **kwargs)  # type: ignore[arg-type]
    if kind == "triton":
        return TritonBackend(url, repo_dir=repo_dir, **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"LUNA_ESTIMATOR_BACKEND must be onnxruntime or triton, not {kind!r}")


def describe(backend: InferenceBackend) -> str:
    if isinstance(backend, OnnxRuntimeBackend):
        return json.dumps({"backend": "onnxruntime", "providers": backend.providers})
    if isinstance(backend, TritonBackend):
        return json.dumps({"backend": "triton", "url": backend.url})
    return type(backend).__name__


# Read by `luna config` to list these lazily read settings.

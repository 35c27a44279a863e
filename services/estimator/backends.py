"""Inference backends behind one interface: in-process ONNX Runtime and Triton (KServe v2 gRPC).

The ONNX Runtime backend schedules every model run itself, as Triton does server-side:
- Runs go to a fixed number of worker threads (`threads`, default one per CPU core), each
  session computing on `intra_op_threads` threads (default 1) with spinning off. Concurrent
  requests then never oversubscribe the cores: with onnxruntime's default spinning pool, raw
  calls at concurrency 8 on 2 shared cores spent 173-221 ms of CPU per request against
  145-172 here (bench/estimator/run.py reports both).
- Calls of a model with a free batch dim that `batch_models` names (see `batch_models_for`) are
  queued and concatenated (up to `max_batch` rows) into one run: a call waits only while every
  worker is busy, or while a run of the same model is in flight, for at most `batch_window_s`
  (newcomers then join it). A lone request waits for nothing. A window of 0 turns batching off:
  each call is its own run, still on the workers. On CPU only the models whose CPU per item
  falls with the batch are concatenated (`batch_models_for`); the others, SFace and YuNet
  among them, cost 9-36 % more per face or frame in a batch than alone.
- When a worker frees, the queued call that has waited longest (over all models) goes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.estimator import model_repo as mr
from services.estimator.metrics import observed

MAX_BATCH = mr.MAX_BATCH_SIZE
DEFAULT_BATCH_WAIT_MS = 2.0  # LUNA_ESTIMATOR_BATCH_WAIT_MS
DEFAULT_INFERENCE_THREADS = 0  # LUNA_ESTIMATOR_INFERENCE_THREADS; 0 = one per CPU core
DEFAULT_INTRA_OP_THREADS = 1  # LUNA_ESTIMATOR_INTRA_OP_THREADS
DEFAULT_BATCH_MODELS = "auto"  # LUNA_ESTIMATOR_BATCH_MODELS
# On CPU (one intra-op thread) concatenating requests pays only where a model's CPU per item
# falls with the batch. b8 / b1 CPU per item, two runs of bench/estimator/batch_cost.py: age
# 0.68 / 0.75, tddfa 0.94 / 0.87; gender 0.98 / 1.08, emotion 1.08 / 1.05, mask 1.05 / 1.06,
# SFace 1.09 / 1.14, RetinaFace 1.10, YuNet 1.3 / 1.21, MobileFaceNet 1.36 / 1.39 (larger
# activations fall out of cache). On a GPU every batchable model gains.
CPU_BATCH_MODELS = ("age", "tddfa")


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


def batch_models_for(setting: str, device: str) -> set[str] | None:
    """LUNA_ESTIMATOR_BATCH_MODELS: `auto` (CPU_BATCH_MODELS on cpu, every batchable model on
    cuda), `all`, `none`, or model names separated by commas. None means all."""
    value = setting.strip().lower()
    if value == "auto":
        return None if device.lower() == "cuda" else set(CPU_BATCH_MODELS)
    if value == "all":
        return None
    if value in ("none", ""):
        return set()
    return {m.strip() for m in value.split(",") if m.strip()}


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    future: asyncio.Future[dict[str, np.ndarray]]
    rows: int
    since: float  # loop time it was queued
    key: tuple[object, ...]  # non-batch dims and dtypes: only equal keys concatenate


@dataclass
class _Queue:
    items: deque[_Pending] = field(default_factory=deque)
    rows: int = 0  # rows queued
    inflight: int = 0  # runs of this model in progress


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
        intra_op_threads: int = DEFAULT_INTRA_OP_THREADS,
        batch_models: str = DEFAULT_BATCH_MODELS,
    ) -> None:
        import onnxruntime as ort

        self._ort = ort
        self.repo_dir = (repo_dir or mr.models_dir()).resolve()
        self.device = (device or DEFAULT_DEVICE).lower()
        self.batch_window_s = batch_window_s
        self.max_batch = max(1, max_batch)
        self.intra_op_threads = max(0, intra_op_threads)
        self.threads = threads if threads and threads > 0 else cpu_cores()
        self._dynamic = _dynamic_models(self.repo_dir)
        self._sessions: dict[str, object] = {}
        self._queues: dict[str, _Queue] = {}
        self._busy = 0  # workers running a model now
        self._soon: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="ort")
        avail = ort.get_available_providers()
        if self.device == "cuda" and "CUDAExecutionProvider" in avail:
            self.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            self.providers = ["CPUExecutionProvider"]
        on = "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"
        chosen = batch_models_for(batch_models, on)
        self._concat = self._dynamic if chosen is None else self._dynamic & chosen

    def session_options(self) -> object:
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        # A spinning intra-op pool holds its cores while it waits for work that another
        # request's run is using them for; with the workers bounded, nothing waits to spin for.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.log_severity_level = 3
        return opts

    def session(self, model: str) -> object:
        sess = self._sessions.get(model)
        if sess is None:
            path = mr.model_path(self.repo_dir, model)
            if not path.is_file():
                raise FileNotFoundError(f"model {model!r} not in repository {self.repo_dir}")
            sess = self._ort.InferenceSession(
                str(path), self.session_options(), providers=self.providers
            )
            self._sessions[model] = sess
        return sess

    def warmup(self, models: list[str]) -> None:
        for m in models:
            self.session(m)

    def is_batched(self, model: str) -> bool:
        """The model has a free batch dim (requests over `max_batch` rows run in chunks)."""
        return model in self._dynamic

    def concatenates(self, model: str) -> bool:
        """Calls of concurrent requests for the model are concatenated into one run."""
        return model in self._concat and self.batch_window_s > 0

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
        rows = int(next(iter(inputs.values())).shape[0]) if inputs else 0
        if self.is_batched(model) and rows > self.max_batch:
            parts = []
            for start in range(0, rows, self.max_batch):
                chunk = {k: v[start : start + self.max_batch] for k, v in inputs.items()}
                parts.append(await self.infer(model, chunk))
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        loop = asyncio.get_running_loop()
        key = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items()))
        pending = _Pending(inputs, loop.create_future(), rows, loop.time(), key)
        q = self._queues.setdefault(model, _Queue())
        q.items.append(pending)
        q.rows += rows
        self._schedule(0.0)
        return await pending.future

    # -------------------------------------------------------------- scheduling
    def _schedule(self, delay: float) -> None:
        """Run `_pump` at the next loop turn (calls that arrive in this one go together), or
        after `delay` when only a batch window is left to wait out."""
        loop = asyncio.get_running_loop()
        if delay <= 0:
            if self._soon is None:
                self._soon = loop.call_soon(self._pump)
            return
        when = loop.time() + delay
        if self._timer is not None and self._timer.when() <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _ready_at(self, model: str, q: _Queue, now: float) -> float:
        """When the queue of `model` may start a run: now, unless a run of the same model is
        in flight and the batch has neither filled up nor waited out the window."""
        if not self.concatenates(model) or q.inflight == 0 or q.rows >= self.max_batch:
            return now
        return q.items[0].since + self.batch_window_s

    def _pump(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        loop = asyncio.get_running_loop()
        wake: float | None = None
        while self._busy < self.threads:
            now = loop.time()
            best: tuple[float, str] | None = None
            for model, q in self._queues.items():
                if not q.items:
                    continue
                at = self._ready_at(model, q, now)
                if at > now:
                    wake = at if wake is None else min(wake, at)
                    continue
                if best is None or q.items[0].since < best[0]:
                    best = (q.items[0].since, model)
            if best is None:
                break
            self._start(best[1])
        if wake is not None and self._busy < self.threads:
            self._schedule(max(0.0, wake - loop.time()))

    def _take(self, model: str, q: _Queue) -> list[_Pending]:
        """The oldest call and, for a batched model, the later ones of the same shape that fit
        in `max_batch` rows (a call is never split)."""
        head = q.items.popleft()
        group, rows = [head], head.rows
        if self.concatenates(model):
            rest: deque[_Pending] = deque()
            while q.items:
                p = q.items.popleft()
                if p.key == head.key and rows + p.rows <= self.max_batch:
                    group.append(p)
                    rows += p.rows
                else:
                    rest.append(p)
            q.items = rest
        q.rows -= rows
        return group

    def _start(self, model: str) -> None:
        q = self._queues[model]
        group = self._take(model, q)
        q.inflight += 1
        self._busy += 1
        task = asyncio.create_task(self._run_group(model, q, group))
        # keep a reference until done: the loop holds tasks only weakly
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_group(self, model: str, q: _Queue, group: list[_Pending]) -> None:
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
            q.inflight -= 1
            self._busy -= 1
            self._schedule(0.0)  # a worker is free: what queued goes now

    async def close(self) -> None:
        for handle in (self._soon, self._timer):
            if handle is not None:
                handle.cancel()
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

"""Wiring of the estimator service: the model repository, one Estimator, the servicer."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from luna.estimator.v1 import estimator_pb2, estimator_pb2_grpc

from services.common import service_main
from services.common.grpc_server import ServiceApp
from services.estimator import model_repo as mr
from services.estimator import settings
from services.estimator.backends import OnnxRuntimeBackend, describe, make_backend
from services.estimator.core import Estimator
from services.estimator.grpc_service import EstimatorServicer

log = logging.getLogger("luna.estimator")


class ModelsMissing(SystemExit):
    """The model repository is absent or broken: the service cannot do anything useful."""


def check_repository(repo_dir: Path) -> None:
    """Fail with a message that says how to fix it, instead of a traceback from onnxruntime.

    Hashes are not re-checked here (that reads ~100 MB at every start); the installer checks
    them, and a corrupt file still fails loudly when its session is created.
    """
    if not mr.manifest_is_valid(repo_dir, check_hashes=False):
        raise ModelsMissing(
            f"estimator: no valid model repository at {repo_dir} (LUNA_MODELS_DIR). "
            "Build it with `make setup` or `luna models install` "
            "(`python -m services.estimator.install`)."
        )


def build_estimator(repo_dir: Path | None = None) -> Estimator:
    repo = (repo_dir or mr.models_dir()).resolve()
    check_repository(repo)
    backend = settings.BACKEND.get()
    if backend.lower() not in ("onnxruntime", "triton"):
        raise ModelsMissing(
            f"estimator: LUNA_ESTIMATOR_BACKEND must be onnxruntime or triton, not {backend!r}"
        )
    batching: dict[str, object] = {}
    if backend.lower() == "onnxruntime":  # Triton batches and schedules server-side
        batching = {
            "batch_window_s": settings.BATCH_WAIT_MS.get_float() / 1000,
            "max_batch": settings.BATCH_MAX.get_int(),
            "threads": settings.INFERENCE_THREADS.get_int(),
            "intra_op_threads": settings.INTRA_OP_THREADS.get_int(),
            "batch_models": settings.BATCH_MODELS.get(),
        }
    est = Estimator(
        make_backend(
            backend,
            repo,
            device=settings.DEVICE.get(),
            url=settings.TRITON_URL.get(),
            **batching,
        ),
        repo,
        detector=settings.DETECTOR.get(),
        inflight_pixels=settings.INFLIGHT_PIXELS.get_int(),
        limits=settings.image_limits(),
    )
    log.info(
        "estimator: models from %s, backend %s, detector %s, descriptor version %d",
        repo,
        describe(est.backend),
        est.detector,
        est.descriptor_version,
    )
    return est


def make_app(repo_dir: Path | None = None) -> ServiceApp:
    resources = service_main.Resources()
    state: dict[str, Estimator] = {}
    # Checked before anything listens, so `luna up` sees the process exit with the message.
    check_repository((repo_dir or mr.models_dir()).resolve())

    async def startup() -> None:
        est = build_estimator(repo_dir)
        resources.on_close(est.close)
        if isinstance(est.backend, OnnxRuntimeBackend):
            # Load every session before reporting SERVING, so the first request does not pay
            # seconds of model loading (and time out behind the gateway).
            await asyncio.to_thread(est.backend.warmup, [m.name for m in mr.MODELS])
        state["estimator"] = est

    def register(server: grpc.aio.Server) -> None:
        estimator_pb2_grpc.add_EstimatorServiceServicer_to_server(
            EstimatorServicer(state["estimator"]), server
        )

    return service_main.service_app("estimator", [estimator_pb2], register, startup, resources)

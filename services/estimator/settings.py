"""Settings of the estimator service. The app reads them and hands the values to the core
(`Estimator`, the backends); defaults are the core's. LUNA_MODELS_DIR lives in model_repo.py:
the installer and the tools share it."""

from __future__ import annotations

from services.common import config
from services.estimator import backends, detect, images

BACKEND = config.declare(
    "LUNA_ESTIMATOR_BACKEND",
    backends.DEFAULT_BACKEND,
    "Inference backend of the estimator: onnxruntime (in-process) or triton.",
)
TRITON_URL = config.declare(
    "LUNA_TRITON_URL", backends.DEFAULT_TRITON_URL, "Triton (KServe v2) gRPC address, host:port."
)
DEVICE = config.declare(
    "LUNA_ESTIMATOR_DEVICE",
    backends.DEFAULT_DEVICE,
    "Device for the onnxruntime backend: cpu, or cuda (CUDAExecutionProvider if available).",
)
BATCH_WAIT_MS = config.declare(
    "LUNA_ESTIMATOR_BATCH_WAIT_MS",
    backends.DEFAULT_BATCH_WAIT_MS,
    "onnxruntime backend: most milliseconds a call of a concatenated model (see "
    "LUNA_ESTIMATOR_BATCH_MODELS) waits to share one run with other requests while a run of "
    "that model is in flight (with nothing in flight it runs at once); 0 turns concatenation "
    "off.",
)
BATCH_MAX = config.declare(
    "LUNA_ESTIMATOR_BATCH_MAX",
    backends.MAX_BATCH,
    "onnxruntime backend: most rows (faces) one batched model run takes from the queue.",
)
BATCH_MODELS = config.declare(
    "LUNA_ESTIMATOR_BATCH_MODELS",
    backends.DEFAULT_BATCH_MODELS,
    "onnxruntime backend: models whose calls from concurrent requests are concatenated into "
    "one run: auto (on cpu the models whose CPU per item falls with the batch, age and tddfa; "
    "on cuda all batchable models), all, none, or names separated by commas.",
)
INFERENCE_THREADS = config.declare(
    "LUNA_ESTIMATOR_INFERENCE_THREADS",
    backends.DEFAULT_INFERENCE_THREADS,
    "onnxruntime backend: model runs in progress at once (worker threads; 0 = one per CPU "
    "core). Further calls queue, and batched models concatenate them.",
)
INTRA_OP_THREADS = config.declare(
    "LUNA_ESTIMATOR_INTRA_OP_THREADS",
    backends.DEFAULT_INTRA_OP_THREADS,
    "onnxruntime backend: threads one model run computes on (0 = onnxruntime's default, one "
    "per core); parallelism comes from the inference threads, so 1 keeps the cores from being "
    "oversubscribed.",
)
DETECTOR = config.declare(
    "LUNA_ESTIMATOR_DETECTOR",
    detect.DEFAULT_DETECTOR,
    "Face detector model: yunet (default) or retinaface.",
)
MAX_IMAGE_BYTES = config.declare(
    "LUNA_MAX_IMAGE_BYTES",
    images.DEFAULT_LIMITS.image_bytes,
    "Largest encoded image the estimator accepts, in bytes (after base64 decoding).",
)
MAX_IMAGE_PIXELS = config.declare(
    "LUNA_MAX_IMAGE_PIXELS",
    images.DEFAULT_LIMITS.image_pixels,
    "Largest decoded image the estimator accepts, in pixels (width x height).",
)
MAX_REQUEST_PIXELS = config.declare(
    "LUNA_MAX_REQUEST_PIXELS",
    images.DEFAULT_LIMITS.request_pixels,
    "Most decoded pixels (sum of width x height of its images, read from their headers before "
    "any decoding) one estimator request may carry; a larger request is refused with LUNA "
    "error 12031 (HTTP 400).",
)
INFLIGHT_PIXELS = config.declare(
    "LUNA_ESTIMATOR_INFLIGHT_PIXELS",
    images.DEFAULT_INFLIGHT_PIXELS,
    "Most decoded image pixels the estimator holds at once over all requests (about 10 bytes "
    "each while decoding); images wait for room, smaller ones pass first.",
)


def image_limits() -> images.ImageLimits:
    return images.ImageLimits(
        image_bytes=MAX_IMAGE_BYTES.get_int(),
        image_pixels=MAX_IMAGE_PIXELS.get_int(),
        request_pixels=MAX_REQUEST_PIXELS.get_int(),
    )

"""A small KServe-v2 gRPC inference server over the model repository, run by onnxruntime.

It stands in for Triton in tests (Triton cannot be installed here): the Triton backend talks to
it with the same tritonclient calls it uses against a real Triton. Only the calls that backend
needs are implemented; the rest answer UNIMPLEMENTED (the generated base class).
Run alone: `python -m services.estimator.kserve_server [REPO_DIR] [--port N]`.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import grpc
import numpy as np
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg

from services.estimator import model_repo as mr
from services.estimator import settings
from services.estimator.backends import OnnxRuntimeBackend

_KSERVE_TO_NP = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "INT8": np.int8,
    "BOOL": np.bool_,
}
_NP_TO_KSERVE = {np.dtype(v).name: k for k, v in _KSERVE_TO_NP.items()}
_NP_TO_CONFIG = {
    "float32": mc.TYPE_FP32,
    "int32": mc.TYPE_INT32,
    "int64": mc.TYPE_INT64,
    "uint8": mc.TYPE_UINT8,
}


class KServeServicer(pbg.GRPCInferenceServiceServicer):
    def __init__(self, repo_dir: Path, backend: OnnxRuntimeBackend | None = None) -> None:
        self.repo_dir = repo_dir
        self.backend = backend or OnnxRuntimeBackend(repo_dir)
        manifest = mr.load_manifest(repo_dir) or {}
        self.models: dict[str, dict[str, object]] = dict(manifest.get("models", {}))  # type: ignore[arg-type]

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=bool(self.models))

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=request.name in self.models)

    async def _model(self, name: str, context: grpc.aio.ServicerContext) -> dict[str, object]:
        entry = self.models.get(name)
        if entry is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}'")
        return entry  # type: ignore[return-value]

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        entry = await self._model(request.name, context)

        def meta(t: dict[str, object]) -> pb.ModelMetadataResponse.TensorMetadata:
            return pb.ModelMetadataResponse.TensorMetadata(
                name=str(t["name"]),
                datatype=_NP_TO_KSERVE[str(t["dtype"])],
                shape=[int(d) for d in t["dims"]],  # type: ignore[attr-defined]
            )

        return pb.ModelMetadataResponse(
            name=request.name,
            versions=["1"],
            platform="onnxruntime_onnx",
            inputs=[meta(t) for t in entry["inputs"]],  # type: ignore[attr-defined]
            outputs=[meta(t) for t in entry["outputs"]],  # type: ignore[attr-defined]
        )

    async def ModelConfig(
        self, request: pb.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelConfigResponse:
        entry = await self._model(request.name, context)
        batched = bool(entry.get("dynamic_batch"))

        def tensor(t: dict[str, object], cls: type) -> object:
            dims = [int(d) for d in t["dims"]]  # type: ignore[attr-defined]
            return cls(
                name=str(t["name"]),
                data_type=_NP_TO_CONFIG[str(t["dtype"])],
                dims=dims[1:] if batched else dims,
            )

        cfg = mc.ModelConfig(
            name=request.name,
            platform="onnxruntime_onnx",
            max_batch_size=mr.MAX_BATCH_SIZE if batched else 0,
            input=[tensor(t, mc.ModelInput) for t in entry["inputs"]],  # type: ignore[attr-defined]
            output=[tensor(t, mc.ModelOutput) for t in entry["outputs"]],  # type: ignore[attr-defined]
        )
        return pb.ModelConfigResponse(config=cfg)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        await self._model(request.model_name, context)
        inputs: dict[str, np.ndarray] = {}
        for i, t in enumerate(request.inputs):
            dtype = _KSERVE_TO_NP.get(t.datatype)
            if dtype is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"datatype {t.datatype}")
            shape = tuple(int(d) for d in t.shape)
            if request.raw_input_contents:
                arr = np.frombuffer(request.raw_input_contents[i], dtype=dtype)
            else:
                c = t.contents
                vals = {
                    np.float32: c.fp32_contents,
                    np.float64: c.fp64_contents,
                    np.int32: c.int_contents,
                    np.int64: c.int64_contents,
                    np.uint8: c.uint_contents,
                    np.int8: c.int_contents,
                    np.bool_: c.bool_contents,
                }.get(dtype, [])
                arr = np.asarray(list(vals), dtype=dtype)
            try:
                inputs[t.name] = arr.reshape(shape)
            except ValueError as e:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        try:
            outputs = await self.backend.infer(request.model_name, inputs)
        except Exception as e:  # report model errors the way Triton does: as the RPC status
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"inference failed: {e}")
        wanted = [o.name for o in request.outputs] or list(outputs)
        resp = pb.ModelInferResponse(
            model_name=request.model_name, model_version="1", id=request.id
        )
        for name in wanted:
            arr = np.ascontiguousarray(outputs[name])
            resp.outputs.append(
                pb.ModelInferResponse.InferOutputTensor(
                    name=name, datatype=_NP_TO_KSERVE[arr.dtype.name], shape=list(arr.shape)
                )
            )
            resp.raw_output_contents.append(arr.tobytes())
        return resp


async def start_server(
    repo_dir: Path, host: str = "127.0.0.1", port: int = 0
) -> tuple[grpc.aio.Server, int]:
    """Start serving; port 0 picks a free port. Returns (server, bound port)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
    )
    pbg.add_GRPCInferenceServiceServicer_to_server(
        KServeServicer(repo_dir, OnnxRuntimeBackend(repo_dir, device=settings.DEVICE.get())), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound


async def _serve(repo_dir: Path, port: int) -> None:
    server, bound = await start_server(repo_dir, port=port)
    print(f"KServe v2 gRPC on 127.0.0.1:{bound} serving {repo_dir}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m services.estimator.kserve_server")
    ap.add_argument("repo_dir", nargs="?", type=Path, default=None)
    ap.add_argument("--port", type=int, default=8001)
    args = ap.parse_args()
    asyncio.run(_serve((args.repo_dir or mr.models_dir()).resolve(), args.port))


if __name__ == "__main__":
    main()

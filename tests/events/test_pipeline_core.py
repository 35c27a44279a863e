"""The generate-events core with fake clients: each policy's effect, nothing stored on failure."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import struct_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb
from luna.faces.v1 import attributes_pb2, blobs_pb2, faces_pb2, lists_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import errors
from services.events.handlers import DYNAMIC, STATIC, Handler, not_found
from services.events.pipeline.generate import Pipeline
from services.events.pipeline.shared import Clients
from services.events.pipeline.verify import Verification
from services.events.policies import validate_handler_policies, validate_verifier_policies
from services.events.verifiers import Verifier

ACCOUNT = str(uuid.uuid4())
LIST_ID = str(uuid.uuid4())
STORED_FACE = str(uuid.uuid4())


def vec(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


class Recorder:
    """Records every call; `fail` names a method that raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: str = ""

    def _rec(self, name: str, req: Any) -> None:
        self.calls.append((name, req))
        if name == self.fail:
            raise errors.LunaError(errors.INTERNAL, f"{name} failed")

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


class FakeEstimator(Recorder):
    def __init__(self, faces_per_image: list[list[dict[str, Any]]]) -> None:
        super().__init__()
        self.faces_per_image = faces_per_image

    async def Detect(self, req: epb.DetectRequest) -> epb.DetectResponse:
        self._rec("Detect", req)
        out = epb.DetectResponse()
        for img, faces in zip(req.images, self.faces_per_image, strict=True):
            if img.data == b"broken":
                out.results.add(
                    filename=img.filename,
                    error={"error_code": 18002, "detail": "Failed convert bytes to image"},
                )
                continue
            dets = out.results.add(filename=img.filename).detections
            for f in faces:
                face = dets.faces.add(
                    box=epb.Box(x=10, y=20, width=100, height=120),
                    score=0.99,
                    sample=b"png-sample",
                    sample_content_type="image/png",
                )
                if "face_descriptor" in req.estimations:
                    face.descriptor.CopyFrom(epb.Descriptor(data=f["descriptor"], version=59))
                est = {k: v for k, v in f.items() if k != "descriptor" and k in req.estimations}
                face.estimations.update(est)
        return out

    async def GetFeatures(self, req: Any) -> epb.GetFeaturesResponse:
        return epb.GetFeaturesResponse(descriptor_version=59)


class FakeMatcher(Recorder):
    async def MatchFaces(self, req: mpb.MatchFacesRequest) -> mpb.MatchFacesResponse:
        self._rec("MatchFaces", req)
        out = mpb.MatchFacesResponse()
        for ref in req.references:
            result = out.results.add(reference=ref)
            cands = result.candidates.add()
            # similarity = first component of the reference descriptor: tests choose it
            sim = struct.unpack("<f", ref.descriptor.descriptor[:4])[0]
            if sim >= req.candidates[0].threshold:
                cands.matches.add(
                    face=faces_pb2.Face(face_id=STORED_FACE, account_id=ACCOUNT), similarity=sim
                )
        return out


class FakeFaces(Recorder):
    async def CreateFace(self, req: faces_pb2.CreateFaceRequest) -> faces_pb2.CreateFaceResponse:
        self._rec("CreateFace", req)
        face = faces_pb2.Face(face_id=str(uuid.uuid4()), list_ids=req.list_ids)
        return faces_pb2.CreateFaceResponse(face=face)

    async def DeleteFace(self, req: faces_pb2.DeleteFaceRequest) -> Any:
        self._rec("DeleteFace", req)

    async def GetList(self, req: lists_pb2.GetListRequest) -> Any:
        self._rec("GetList", req)
        if req.list_id != LIST_ID:
            raise errors.LunaError(22003, f"List with id '{req.list_id}' not found")

    async def PutBlobs(self, req: blobs_pb2.PutBlobsRequest) -> blobs_pb2.PutBlobsResponse:
        self._rec("PutBlobs", req)
        return blobs_pb2.PutBlobsResponse(blob_ids=[str(uuid.uuid4()) for _ in req.blobs])

    async def DeleteBlob(self, req: Any) -> Any:
        self._rec("DeleteBlob", req)

    async def CreateAttribute(self, req: Any) -> attributes_pb2.CreateAttributeResponse:
        self._rec("CreateAttribute", req)
        return attributes_pb2.CreateAttributeResponse(
            attribute=attributes_pb2.Attribute(attribute_id=str(uuid.uuid4()))
        )

    async def DeleteAttribute(self, req: Any) -> Any:
        self._rec("DeleteAttribute", req)


class FakeHandlers:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def add(self, policies: dict[str, Any] | None, handler_type: int = STATIC) -> str:
        hid = str(uuid.uuid4())
        now = datetime.now(UTC)
        stored = validate_handler_policies(policies) if policies is not None else None
        self.handlers[hid] = Handler(hid, ACCOUNT, "", handler_type, stored, None, now, now)
        return hid

    async def get_own(self, account_id: str, handler_id: str) -> Handler:
        if handler_id not in self.handlers:
            raise not_found(handler_id)
        return self.handlers[handler_id]


class FakeEvents(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.saved: list[Any] = []

    async def save(self, scope: Any, handler_id: str, events: list[Any], **kw: Any) -> list[str]:
        self._rec("save", events)
        self.saved.extend(events)
        return [e.event_id for e in events]


@pytest.fixture
def world() -> dict[str, Any]:
    faces = FakeFaces()
    return {
        "faces": faces,
        "matcher": FakeMatcher(),
        "handlers": FakeHandlers(),
        "events": FakeEvents(),
    }


def make(world: dict[str, Any], faces_per_image: list[list[dict[str, Any]]]) -> Pipeline:
    world["estimator"] = FakeEstimator(faces_per_image)
    f = world["faces"]
    clients = Clients(world["estimator"], world["matcher"], f, f, f, f)
    return Pipeline(clients, world["handlers"], world["events"])  # type: ignore[arg-type]


def request(handler_id: str, images: list[bytes], **kw: Any) -> ppb.GenerateEventsRequest:
    return ppb.GenerateEventsRequest(
        scope={"account_id": ACCOUNT},
        handler_id=handler_id,
        inputs=[
            ppb.InputItem(image=epb.Image(data=d, content_type="image/jpeg", filename=f"{i}.jpg"))
            for i, d in enumerate(images)
        ],
        **kw,
    )


FULL = {
    "detect_policy": {"yaw_threshold": 30, "estimate_head_pose": 1},
    "extract_policy": {"extract_face_descriptor": 1, "extract_basic_attributes": 1},
    "match_policy": [
        {
            "label": "vip",
            "candidates": {"origin": "faces", "list_id": LIST_ID},
            "threshold": 0.5,
            "limit": 3,
        }
    ],
    "conditional_tags_policy": [
        {"tag": "known", "filters": {"match": [{"label": "vip", "similarity__gte": 0.8}]}},
        {"tag": "old", "filters": {"age__gte": 60}},
    ],
    "storage_policy": {
        "face_policy": {"store_face": 1, "link_to_lists_policy": [{"list_id": LIST_ID}]},
        "attribute_policy": {"store_attribute": 1, "ttl": 60},
        "event_policy": {"store_event": 1, "wait_saving": 1},
    },
}
FACE_OK = {
    "descriptor": vec(0.9, 0.1),
    "head_pose": {"yaw": 5.0, "pitch": 0.0, "roll": 0.0},
    "basic_attributes": {"age": 30.0, "gender": 1.0, "gender_score": 0.9},
}


async def test_every_policy_takes_effect(world: dict[str, Any]) -> None:
    hid = world["handlers"].add(FULL)
    turned = {**FACE_OK, "head_pose": {"yaw": 70.0, "pitch": 0.0, "roll": 0.0}}
    pipe = make(world, [[FACE_OK, turned]])
    result, event_ids = await pipe.generate(
        request(hid, [b"img"], meta=ppb.EventMeta(source="cam1", tags=["t"]))
    )
    # detect_policy: the turned face is filtered, not an error, and makes no event
    assert len(result["events"]) == 1 == len(event_ids)
    assert result["filtered_detections"]["face_detections"][0]["filter_reasons"] == [
        "yaw_threshold"
    ]
    event = result["events"][0]
    # match_policy through MatcherService.MatchFaces with the list and threshold
    match_req = world["matcher"].calls[0][1]
    assert match_req.candidates[0].list_id == LIST_ID and match_req.candidates[0].threshold == 0.5
    cand = event["matches"][0]["candidates"][0]
    assert event["matches"][0]["label"] == "vip" and cand["face"]["face_id"] == STORED_FACE
    assert cand["similarity"] == pytest.approx(0.9, abs=1e-5)
    # conditional tags: the match filter holds, the age filter does not
    assert event["tags"] == ["t", "known"]
    assert event["face_attributes"]["basic_attributes"]["age"] == 30
    # storage: sample, attribute with ttl, face linked to the list, event with descriptor
    names = world["faces"].names()
    assert names == ["GetList", "PutBlobs", "CreateAttribute", "CreateFace"]
    attr_req = world["faces"].calls[2][1]
    assert attr_req.ttl_seconds == 60
    face_req = world["faces"].calls[3][1]
    assert list(face_req.list_ids) == [LIST_ID] and face_req.event_id == event["event_id"]
    assert event["face"]["lists"] == [LIST_ID]
    saved = world["events"].saved[0]
    assert saved.event_id == event["event_id"] and saved.event["source"] == "cam1"
    assert saved.descriptors[0].descriptor == FACE_OK["descriptor"]
    assert saved.event["detections"][0]["samples"]["face"]["sample_id"]


async def test_filters_gate_storage(world: dict[str, Any]) -> None:
    policies = {
        "extract_policy": {"extract_face_descriptor": 1},
        "match_policy": FULL["match_policy"],
        "storage_policy": {
            "face_sample_policy": {"store_sample": 0},
            "face_policy": {
                "store_face": 1,
                "filters": {"match": [{"label": "vip", "similarity__lt": 0.7}]},
            },
        },
    }
    hid = world["handlers"].add(policies)
    pipe = make(world, [[FACE_OK]])
    result, _ = await pipe.generate(request(hid, [b"img"]))
    # similarity 0.9 is not < 0.7: no face, the event is still stored
    assert "CreateFace" not in world["faces"].names() and "PutBlobs" not in world["faces"].names()
    assert "face" not in result["events"][0] and len(world["events"].saved) == 1


async def test_bad_image_stores_nothing(world: dict[str, Any]) -> None:
    hid = world["handlers"].add(FULL)
    pipe = make(world, [[FACE_OK], []])
    with pytest.raises(errors.LunaError) as err:
        await pipe.generate(request(hid, [b"img", b"broken"]))
    assert err.value.code == 18002
    assert [n for n in world["faces"].names() if n != "GetList"] == []
    assert world["events"].saved == [] and world["matcher"].calls == []


async def test_unknown_handler_and_invalid_dynamic_policies(world: dict[str, Any]) -> None:
    pipe = make(world, [[FACE_OK]])
    with pytest.raises(errors.LunaError) as err:
        await pipe.generate(request(str(uuid.uuid4()), [b"img"]))
    assert err.value.code == 34000
    dyn = world["handlers"].add(None, DYNAMIC)
    bad = struct_pb2.Struct()
    bad.update({"detect_policy": {"multiface_policy": 7}})
    with pytest.raises(errors.LunaError) as err:
        await pipe.generate(request(dyn, [b"img"], policies=bad))
    assert err.value.code == errors.BAD_JSON and "multiface_policy" in err.value.detail
    assert world["estimator"].calls == [] and world["faces"].calls == []
    # the same handler with valid policies works
    good = struct_pb2.Struct()
    good.update({"storage_policy": {"face_sample_policy": {"store_sample": 0}}})
    _, ids = await pipe.generate(request(dyn, [b"img"], policies=good))
    assert len(ids) == 1 and world["faces"].calls == []


async def test_unknown_list_refused_before_any_write(world: dict[str, Any]) -> None:
    policies = {
        "storage_policy": {
            "face_policy": {
                "store_face": 1,
                "link_to_lists_policy": [{"list_id": str(uuid.uuid4())}],
            }
        }
    }
    hid = world["handlers"].add(policies)
    pipe = make(world, [[FACE_OK]])
    with pytest.raises(errors.LunaError) as err:
        await pipe.generate(request(hid, [b"img"]))
    assert err.value.code == 22003
    assert world["faces"].names() == ["GetList"] and world["events"].saved == []


async def test_failed_save_undoes_face_attribute_and_sample(world: dict[str, Any]) -> None:
    hid = world["handlers"].add(FULL)
    pipe = make(world, [[FACE_OK]])
    world["events"].fail = "save"
    with pytest.raises(errors.LunaError):
        await pipe.generate(request(hid, [b"img"]))
    names = world["faces"].names()
    assert names[-3:] == ["DeleteFace", "DeleteAttribute", "DeleteBlob"]


async def test_aggregate_attributes_makes_one_event(world: dict[str, Any]) -> None:
    policies = {
        "extract_policy": {"extract_face_descriptor": 1, "extract_basic_attributes": 1},
        "storage_policy": {"face_sample_policy": {"store_sample": 0}},
    }
    hid = world["handlers"].add(policies)
    a = {**FACE_OK, "descriptor": vec(1.0, 0.0), "basic_attributes": {"age": 20.0, "gender": 1.0}}
    b = {**FACE_OK, "descriptor": vec(0.0, 1.0), "basic_attributes": {"age": 40.0, "gender": 1.0}}
    pipe = make(world, [[a], [b]])
    result, ids = await pipe.generate(request(hid, [b"x", b"y"], aggregate_attributes=True))
    assert len(ids) == 1
    event = result["events"][0]
    assert len(event["detections"]) == 2
    assert event["face_attributes"]["basic_attributes"]["age"] == 30
    x, y = struct.unpack("<2f", world["events"].saved[0].descriptors[0].descriptor)
    assert x == pytest.approx(y) and x * x + y * y == pytest.approx(1.0)


async def test_event_time_headers_and_descriptor_inputs(world: dict[str, Any]) -> None:
    policies = {"match_policy": FULL["match_policy"]}
    hid = world["handlers"].add(policies)
    pipe = make(world, [])
    req = ppb.GenerateEventsRequest(
        scope={"account_id": ACCOUNT},
        handler_id=hid,
        inputs=[ppb.InputItem(descriptor=ppb.InputDescriptor(descriptor=vec(0.6, 0.8)))],
    )
    req.event_time.FromJsonString("2024-05-01T10:00:00Z")
    result, _ = await pipe.generate(req)
    event = result["events"][0]
    assert event["create_time"].startswith("2024-05-01T10:00:00") and event["detections"] == []
    assert event["matches"][0]["candidates"][0]["similarity"] == pytest.approx(0.6, abs=1e-5)
    bad = ppb.GenerateEventsRequest(
        scope={"account_id": ACCOUNT},
        handler_id=hid,
        inputs=[ppb.InputItem(descriptor=ppb.InputDescriptor(descriptor=b"abc"))],
    )
    with pytest.raises(errors.LunaError) as err:
        await pipe.generate(bad)
    assert err.value.code == 12034


async def test_notification_policy_and_callbacks(world: dict[str, Any]) -> None:
    import asyncio

    import msgpack
    from aiohttp import web

    from services.events.pipeline.callbacks import CallbackSender
    from services.launcher.embedded import pick_free_port

    received: list[tuple[str, str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        ctype = request.headers["Content-Type"]
        body = msgpack.unpackb(raw) if ctype == "application/msgpack" else await request.json()
        received.append((request.path, request.headers.get("Authorization", ""), body))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{name}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = pick_free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        policies = {
            "extract_policy": {"extract_face_descriptor": 1, "extract_basic_attributes": 1},
            "storage_policy": {
                "face_sample_policy": {"store_sample": 0},
                "event_policy": {"store_event": 0},
                "notification_policy": {"send_notification": 0},
                "callbacks": [
                    {
                        "type": "http",
                        "url": f"http://127.0.0.1:{port}/young",
                        "filters": {"age__lt": 40},
                        "authorization": {"type": "basic", "login": "u", "password": "p"},
                    },
                    {
                        "type": "http",
                        "url": f"http://127.0.0.1:{port}/old",
                        "filters": {"age__gte": 60},
                    },
                    {
                        "type": "http",
                        "url": f"http://127.0.0.1:{port}/packed",
                        "params": {"content_type": "application/msgpack"},
                    },
                    {"type": "http", "url": f"http://127.0.0.1:{port}/off", "enable": 0},
                    {"type": "luna-ws-notification", "filters": {"age__lt": 40}},
                ],
            },
        }
        hid = world["handlers"].add(policies)
        pipe = make(world, [[FACE_OK]])
        sender = CallbackSender()
        pipe._callbacks = sender
        result, _ = await pipe.generate(request(hid, [b"img"]))
        event_id = result["events"][0]["event_id"]
        # Not stored, but the ws-notification callback (age 30 < 40) notifies the Sender.
        (saved,) = world["events"].saved
        assert (saved.store, saved.notify, saved.event_id) == (False, True, event_id)
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.02)
        await sender.close()
        by_path = {path: (auth, body) for path, auth, body in received}
        assert set(by_path) == {"/young", "/packed"}
        auth, body = by_path["/young"]
        assert auth == "Basic dTpw" and [e["event_id"] for e in body["events"]] == [event_id]
        assert by_path["/packed"][1]["events"][0]["event_id"] == event_id
        # Silent: stored but no notification at all.
        policies["storage_policy"] = {
            "face_sample_policy": {"store_sample": 0},
            "notification_policy": {"send_notification": 0},
        }
        quiet = world["handlers"].add(policies)
        await make(world, [[FACE_OK]]).generate(request(quiet, [b"img"]))
        assert (world["events"].saved[-1].store, world["events"].saved[-1].notify) == (True, False)
    finally:
        await runner.cleanup()


# -- verification ------------------------------------------------------------------------------

EVENT_ID = str(uuid.uuid4())


class RawMatcher(FakeMatcher):
    async def MatchRaw(self, req: mpb.MatchRawRequest) -> mpb.MatchRawResponse:
        self._rec("MatchRaw", req)
        out = mpb.MatchRawResponse()
        for ref in req.references:
            result = out.results.add(reference_id=ref.id)
            a = struct.unpack("<2f", ref.descriptor.descriptor)
            for cand in req.candidates:
                b = struct.unpack("<2f", cand.descriptor.descriptor)
                result.matches.add(candidate_id=cand.id, similarity=a[0] * b[0] + a[1] * b[1])
        return out


class FakeVerifiers:
    def __init__(self, policies: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        self.verifier = Verifier(
            str(uuid.uuid4()), ACCOUNT, "", validate_verifier_policies(policies), 1, now, now
        )

    async def get(self, scope: Any, verifier_id: str) -> Verifier:
        return self.verifier


class DescriptorEvents(FakeEvents):
    async def descriptors(self, scope: Any, **kw: Any) -> list[tuple[str, bytes, int]]:
        return [(e, vec(1.0, 0.0), 59) for e in kw["event_ids"] if e == EVENT_ID]


def verification(world: dict[str, Any], policies: dict[str, Any]) -> Verification:
    world["estimator"] = FakeEstimator([[FACE_OK]])
    world["matcher"] = RawMatcher()
    f = world["faces"]
    clients = Clients(world["estimator"], world["matcher"], f, f, f, f)
    return Verification(clients, FakeVerifiers(policies), DescriptorEvents())  # type: ignore[arg-type]


async def test_verify_images_and_descriptors(world: dict[str, Any]) -> None:
    policies = {
        "verification_threshold": 0.5,
        "storage_policy": {
            "face_sample_policy": {"store_sample": 1},
            "attribute_policy": {"store_attribute": 1},
        },
    }
    verifier = verification(world, policies)
    req = ppb.VerifyRequest(
        scope={"account_id": ACCOUNT},
        references=[
            ppb.VerifyReference(image=epb.Image(data=b"img", filename="a.jpg")),
            ppb.VerifyReference(descriptor=ppb.InputDescriptor(descriptor=vec(0.3, 0.95))),
        ],
        face_ids=[STORED_FACE],
        event_ids=[EVENT_ID],
    )
    result = await verifier.verify(req)
    image, desc = result["images"]
    assert image["filename"] == "a.jpg" and desc["filename"] == "descriptor_1"
    (face,) = image["detections"]["face_detections"]
    assert face["detection"]["rect"]["width"] == 100 and face["sample_id"] and face["attribute_id"]
    found = {next(iter(v)): (v["similarity"], v["status"]) for v in face["verifications"]}
    assert found == {"face": (pytest.approx(0.9), True), "event": (pytest.approx(0.9), True)}
    assert image["detections"]["overall_status"] is True
    statuses = [v["status"] for v in desc["detections"]["face_detections"][0]["verifications"]]
    assert statuses == [False, False] and desc["detections"]["overall_status"] is False
    assert world["faces"].names() == ["PutBlobs", "CreateAttribute"]
    # an unknown event is refused before anything is stored
    world["faces"].calls.clear()
    req.event_ids[:] = [str(uuid.uuid4())]
    with pytest.raises(errors.LunaError) as err:
        await verifier.verify(req)
    assert err.value.code == errors.EVENT_NOT_FOUND and world["faces"].calls == []


async def test_verify_raw(world: dict[str, Any]) -> None:
    verifier = verification(world, {"verification_threshold": 0.5})
    raw = ppb.VerifyRawRequest(
        scope={"account_id": ACCOUNT},
        references=[ppb.RawEntity(id="r", descriptor=ppb.InputDescriptor(descriptor=vec(1, 0)))],
        candidates=[
            ppb.RawEntity(id="c1", descriptor=ppb.InputDescriptor(descriptor=vec(0.2, 0.98))),
            ppb.RawEntity(id="c2", descriptor=ppb.InputDescriptor(descriptor=vec(0.8, 0.6))),
        ],
    )
    result = await verifier.verify_raw(raw)
    (match,) = result["matches"]
    assert match["reference_id"] == "r"
    assert [(m["candidate_id"], m["status"]) for m in match["matches"]] == [
        ("c2", True),
        ("c1", False),
    ]
    raw.candidates[0].descriptor.descriptor = b"abc"
    with pytest.raises(errors.LunaError) as err:
        await verifier.verify_raw(raw)
    assert err.value.code == errors.BAD_DESCRIPTOR_LENGTH
    del raw.candidates[:]
    with pytest.raises(errors.LunaError) as err:
        await verifier.verify_raw(raw)
    assert err.value.code == errors.BAD_JSON


def test_aggregated_gender_is_the_mean_probability_of_male() -> None:
    """The estimator's gender_score is the score of the predicted gender, so two confident
    women aggregate to a woman (a plain mean of gender_score would say male)."""
    from luna.estimator.v1 import estimator_pb2 as epb
    from luna.events.v1 import pipeline_pb2 as ppb

    from services.events.pipeline.shared import Detected
    from services.events.pipeline.units import aggregate

    women = [
        Detected(
            i, epb.Face(), {"basic_attributes": {"age": 30 + i, "gender": 0, "gender_score": 0.9}}
        )
        for i in range(2)
    ]
    unit = aggregate(ppb.GenerateEventsRequest(), women, [], [{}, {}], 1)
    assert unit.basic is not None
    assert unit.basic["gender"] == 0
    assert unit.basic["gender_score"] == pytest.approx(0.9)
    assert unit.basic["age"] in (30, 31)

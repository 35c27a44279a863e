"""/6/sdk, /6/detector, samples, images, objects, features through a running platform.

Real models, real photos (skimage's astronaut and the nsface wheel's test photos), real
PostgreSQL: what a LUNA client sees over REST.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psycopg
import pytest
from lunatest import assert_error, bearer, create_account
from PIL import Image
from skimage import data

from services.estimator import model_repo as mr


def encode(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos() -> Path:
    """The nsface photos `make setup` / `luna models install` put next to the repository."""
    repo = mr.models_dir()
    assert mr.manifest_is_valid(repo, check_hashes=False), "run `luna models install` first"
    return mr.test_images_dir(repo)


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    return encode(data.astronaut())


@pytest.fixture(scope="module")
async def accounts(platform, http) -> dict[str, Any]:
    a_id, a = await create_account(http, platform.url)
    _, b = await create_account(http, platform.url)
    return {"a": a, "b": b, "a_id": a_id}


async def blob_count(platform, account_id: str) -> int:
    """Rows in the blobs table: the only honest proof that a refused upload wrote nothing."""
    async with await psycopg.AsyncConnection.connect(platform.runtime["database_url"]) as conn:
        cur = await conn.execute("SELECT count(*) FROM blobs WHERE account_id = %s", (account_id,))
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def sdk(http, platform, headers, body: bytes, ctype: str, **params: Any) -> Any:
    async with http.post(
        platform.url + "/6/sdk",
        params={k: str(v) for k, v in params.items()},
        data=body,
        headers={**headers, "Content-Type": ctype},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["images_estimations"]


async def test_astronaut_one_face_with_descriptor(platform, http, accounts, astronaut_jpeg):
    (image,) = await sdk(
        http,
        platform,
        accounts["a"],
        astronaut_jpeg,
        "image/jpeg",
        detect_face=1,
        estimate_face_descriptor=1,
        estimate_landmarks5=1,
    )
    assert image["status"] == 1 and image["error"]["error_code"] == 0
    (est,) = image["estimations"]
    assert est["body"] is None
    det = est["face"]["detection"]
    r = det["rect"]
    assert all(isinstance(r[k], int) for k in ("x", "y", "width", "height"))
    assert 60 <= r["width"] <= 200 and 0.8 <= r["height"] / r["width"] <= 1.6
    assert 150 < r["x"] + r["width"] / 2 < 260 and 60 < r["y"] < 200
    lm = det["landmarks5"]
    assert len(lm) == 5
    for x, y in lm:
        assert r["x"] <= x <= r["x"] + r["width"] and r["y"] <= y <= r["y"] + r["height"]
    assert lm[0][0] < lm[1][0]  # eyes left to right
    desc = est["face"]["attributes"]["descriptor"]
    assert desc["version"] == 200
    vec = np.frombuffer(base64.b64decode(desc["sdk_descriptor"]), dtype="<f4")
    assert vec.shape == (128,) and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4
    assert set(est["face"]) == {"detection", "attributes"}
    assert set(det) == {"rect", "landmarks5"}  # nothing that was not asked for

    # Not asked: no descriptor, no attributes; detect_face=0 (LUNA default): no faces.
    (image,) = await sdk(
        http, platform, accounts["a"], astronaut_jpeg, "image/jpeg", detect_face=1,
        estimate_face_descriptor=0,
    )  # fmt: skip
    assert image["estimations"][0]["face"]["attributes"] == {}
    (image,) = await sdk(http, platform, accounts["a"], astronaut_jpeg, "image/jpeg")
    assert image["status"] == 1 and image["estimations"] == []


async def test_group_photo_and_masks_multipart(platform, http, accounts, photos):
    form = aiohttp.FormData()
    form.add_field("group", (photos / "01.jpg").read_bytes(), filename="01.jpg",
                   content_type="image/jpeg")  # fmt: skip
    # p3.jpg is a PNG despite its name: declared as such it works, declared JPEG it is 11028.
    form.add_field("masks", (photos / "p3.jpg").read_bytes(), filename="p3.jpg",
                   content_type="image/png")  # fmt: skip
    form.add_field("liar", (photos / "p3.jpg").read_bytes(), filename="liar.jpg",
                   content_type="image/jpeg")  # fmt: skip
    async with http.post(
        platform.url + "/6/sdk",
        params={"detect_face": "1", "estimate_mask": "1", "estimate_face_descriptor": "0"},
        data=form,
        headers=accounts["a"],
    ) as resp:
        assert resp.status == 200, await resp.text()
        group, masks, liar = (await resp.json())["images_estimations"]
    assert group["filename"] == "01.jpg" and masks["filename"] == "p3.jpg"
    assert liar["status"] == 0 and liar["error"]["error_code"] == 11028
    assert len(group["estimations"]) == 8
    assert len(masks["estimations"]) == 3
    for est in masks["estimations"]:
        mask = est["face"]["detection"]["attributes"]["mask"]
        assert mask["predominant_mask"] == "medical_mask"
        assert abs(sum(mask["estimations"].values()) - 1.0) < 1e-3

    # LUNA's filter: only faces without a mask.
    (filtered,) = await sdk(
        http, platform, accounts["a"], (photos / "p3.jpg").read_bytes(), "image/png",
        detect_face=1, mask_states=1,
    )  # fmt: skip
    assert filtered["estimations"] == []
    assert len(filtered["filtered_estimations"]["faces"]) == 3
    assert filtered["filtered_estimations"]["faces"][0]["filter_reasons"] == ["mask_states"]


async def test_every_estimation_shape_and_range(platform, http, accounts, astronaut_jpeg):
    flags = {
        f"estimate_{n}": 1
        for n in (
            "head_pose", "emotions", "mask", "quality", "liveness", "basic_attributes",
            "landmarks68", "landmarks5", "face_warp", "face_descriptor",
        )
    }  # fmt: skip
    body = base64.b64encode(astronaut_jpeg)
    (image,) = await sdk(
        http, platform, accounts["a"], body, "image/x-jpeg-base64", detect_face=1, **flags
    )
    face = image["estimations"][0]["face"]
    det, attrs = face["detection"], face["attributes"]
    a = det["attributes"]
    pose = a["head_pose"]
    assert set(pose) == {"pitch", "roll", "yaw"}
    assert all(-90 <= v <= 90 for v in pose.values()) and abs(pose["yaw"]) < 30
    emo = a["emotions"]
    assert set(emo["estimations"]) == {
        "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"
    }  # fmt: skip
    assert abs(sum(emo["estimations"].values()) - 1.0) < 1e-3
    assert emo["predominant_emotion"] == max(emo["estimations"], key=emo["estimations"].get)
    assert a["mask"]["predominant_mask"] == "missing"
    assert set(a["quality"]) == {"darkness", "light", "blurriness", "illumination", "specularity"}
    assert all(0.0 <= v <= 1.0 for v in a["quality"].values())
    live = a["liveness"]
    assert live["prediction"] in (0, 1, 2) and isinstance(live["prediction"], int)
    assert 0.0 <= live["estimations"]["score"] <= 1.0
    assert 0.0 <= live["estimations"]["quality"] <= 1.0
    assert len(det["landmarks68"]) == 68 and len(det["landmarks5"]) == 5
    warp = Image.open(io.BytesIO(base64.b64decode(det["warp"])))
    assert warp.size == (250, 250) and warp.format == "JPEG"
    ba = attrs["basic_attributes"]
    assert isinstance(ba["age"], int) and 20 <= ba["age"] <= 60
    assert ba["gender"] == 0 and 0.5 <= ba["gender_score"] <= 1.0
    assert attrs["descriptor"]["version"] == 200

    # The same through the JSON body form.
    async with http.post(
        platform.url + "/6/sdk",
        params={"detect_face": "1"},
        json={"images": [{"image": body.decode(), "mimetype": "image/jpeg", "filename": "x"}]},
        headers=accounts["a"],
    ) as resp:
        assert resp.status == 200, await resp.text()
        (image,) = (await resp.json())["images_estimations"]
    assert image["filename"] == "x" and len(image["estimations"]) == 1


async def test_estimations_without_a_model_are_refused(platform, http, accounts, astronaut_jpeg):
    for params, name in (
        ({"detect_face": "1", "estimate_glasses": "1"}, "estimate_glasses"),
        ({"detect_body": "1", "estimate_body_descriptor": "1"}, "estimate_body_descriptor"),
        ({"estimate_people_count": "1"}, "estimate_people_count"),
    ):
        async with http.post(
            platform.url + "/6/sdk",
            params=params,
            data=astronaut_jpeg,
            headers={**accounts["a"], "Content-Type": "image/jpeg"},
        ) as resp:
            await assert_error(resp, 403, 11044, name)
    async with http.post(
        platform.url + "/6/detector",
        params={"estimate_gaze": "1"},
        data=astronaut_jpeg,
        headers={**accounts["a"], "Content-Type": "image/jpeg"},
    ) as resp:
        await assert_error(resp, 403, 11044, "estimate_gaze")
    # detect_body alone works: MoveNet boxes, no body estimation asked (none by default).
    (image,) = await sdk(
        http, platform, accounts["a"], astronaut_jpeg, "image/jpeg", detect_face=1, detect_body=1
    )
    assert image["estimations"][0]["body"]["detection"]["rect"]["height"] > 100


def oversized_png() -> bytes:
    """A real PNG over the 20 MiB default image limit (noise does not compress)."""
    rng = np.random.default_rng(7)
    body = encode(rng.integers(0, 256, (2900, 2600, 3), dtype=np.uint8), "PNG")
    assert 20 * 1024 * 1024 < len(body) < 32 * 1024 * 1024
    return body


async def test_bad_images_get_documented_errors_and_store_nothing(
    platform, http, accounts, astronaut_jpeg
):
    png = encode(data.astronaut(), "PNG")
    cases = [
        (astronaut_jpeg[: len(astronaut_jpeg) // 2], "image/jpeg", 18002),  # truncated
        (b"", "image/jpeg", 18002),  # empty
        (png, "image/jpeg", 11028),  # wrongly typed
        (b"not an image at all", "image/png", 18002),
        (oversized_png(), "image/png", 12022),
    ]
    before = await blob_count(platform, accounts["a_id"])
    for body, ctype, code in cases:
        (image,) = await sdk(http, platform, accounts["a"], body, ctype, detect_face=1)
        assert image["status"] == 0 and image["error"]["error_code"] == code, image
        assert "estimations" not in image
        async with http.post(
            platform.url + "/6/detector",
            data=body,
            headers={**accounts["a"], "Content-Type": ctype},
        ) as resp:
            await assert_error(resp, 400, code)
        async with http.post(
            platform.url + "/6/images", data=body, headers={**accounts["a"], "Content-Type": ctype}
        ) as resp:
            await assert_error(resp, 400, code)
    async with http.post(
        platform.url + "/6/sdk",
        data=b"hello",
        headers={**accounts["a"], "Content-Type": "text/plain"},
    ) as resp:
        await assert_error(resp, 415, 12023)
    # A photo is no face sample: samples must be 250x250.
    async with http.post(
        platform.url + "/6/samples/faces",
        data=astronaut_jpeg,
        headers={**accounts["a"], "Content-Type": "image/jpeg"},
    ) as resp:
        await assert_error(resp, 400, 11030)
    assert await blob_count(platform, accounts["a_id"]) == before


async def test_detector_stores_samples(platform, http, accounts, astronaut_jpeg, photos):
    a, b = accounts["a"], accounts["b"]
    async with http.post(
        platform.url + "/6/detector",
        params={"estimate_head_pose": "1"},
        data=astronaut_jpeg,
        headers={**a, "Content-Type": "image/jpeg"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        (image,) = (await resp.json())["images"]
    assert image["status"] == 1
    (sample,) = image["detections"]["samples"]
    face = sample["face"]
    assert face["url"] == f"/6/samples/faces/{face['sample_id']}"
    assert set(face["detection"]["attributes"]) == {"head_pose"}
    url = platform.url + face["url"]
    async with http.get(url, headers=a) as resp:
        assert resp.status == 200 and resp.content_type == "image/jpeg"
        stored = await resp.read()
    assert Image.open(io.BytesIO(stored)).size == (250, 250)
    async with http.head(url, headers=a) as resp:
        assert resp.status == 200
    for method in ("GET", "HEAD", "DELETE"):  # another account sees nothing
        async with http.request(method, url, headers=b) as resp:
            assert resp.status == 404
            if method != "HEAD":
                await assert_error(resp, 404, 13003)

    # The stored sample goes back in as a warp (LUNA's warped_image=1) and as a sample upload.
    async with http.post(
        platform.url + "/6/detector",
        params={"warped_image": "1"},
        data=stored,
        headers={**a, "Content-Type": "image/jpeg"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        assert len((await resp.json())["images"][0]["detections"]["samples"]) == 1
    async with http.post(
        platform.url + "/6/samples/faces", data=stored, headers={**a, "Content-Type": "image/jpeg"}
    ) as resp:
        assert resp.status == 201
        again = await resp.json()
    assert again["url"] == f"/6/samples/faces/{again['sample_id']}"

    async with http.delete(url, headers=a) as resp:
        assert resp.status == 204
    async with http.get(url, headers=a) as resp:
        await assert_error(resp, 404, 13003)

    # Many faces: one stored sample each; head pose thresholds filter (0 filters all).
    async with http.post(
        platform.url + "/6/detector",
        params={"yaw_threshold": "0"},
        data=(photos / "01.jpg").read_bytes(),
        headers={**a, "Content-Type": "image/jpeg"},
    ) as resp:
        det = (await resp.json())["images"][0]["detections"]
    assert det["samples"] == [] and len(det["filtered_detections"]["face_detections"]) == 8


async def test_images_round_trip_with_meta(platform, http, accounts, astronaut_jpeg):
    a, b = accounts["a"], accounts["b"]
    png = encode(data.astronaut()[:100, :120], "PNG")
    async with http.post(
        platform.url + "/6/images",
        data=png,
        headers={**a, "Content-Type": "image/png", "X-Luna-Meta-Camera": "gate 7"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
    url = platform.url + created["url"]
    assert created["url"] == f"/6/images/{created['image_id']}"
    async with http.get(url, headers=a) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert await resp.read() == png
        assert "X-Luna-Meta-camera" not in resp.headers
    async with http.get(url, params={"with_meta": "1"}, headers=a) as resp:
        assert resp.headers["X-Luna-Meta-camera"] == "gate 7"
    async with http.head(url, headers=a) as resp:
        assert resp.status == 200
    async with http.get(url, headers=b) as resp:
        await assert_error(resp, 404, 13003)
    async with http.delete(url, headers=b) as resp:
        await assert_error(resp, 404, 13003)
    async with http.delete(url, headers=a) as resp:
        assert resp.status == 204
    async with http.head(url, headers=a) as resp:
        assert resp.status == 404


async def test_objects_round_trip(platform, http, accounts):
    a, b = accounts["a"], accounts["b"]
    for ctype, body in (
        ("text/plain", b"example"),
        ("application/json", json.dumps({"k": [1, 2]}).encode()),
        ("application/x-custom; v=2", bytes(range(256))),
    ):
        async with http.post(
            platform.url + "/6/objects", data=body, headers={**a, "Content-Type": ctype}
        ) as resp:
            assert resp.status == 201, await resp.text()
            created = await resp.json()
        url = platform.url + created["url"]
        async with http.get(url, headers=a) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == ctype
            assert await resp.read() == body
        async with http.get(url, headers=b) as resp:
            await assert_error(resp, 404, 13007)
        async with http.delete(url, headers=a) as resp:
            assert resp.status == 204
        async with http.get(url, headers=a) as resp:
            await assert_error(resp, 404, 13007)


async def test_token_permissions(platform, http, accounts, astronaut_jpeg):
    async def token(perms: dict[str, Any]) -> dict[str, str]:
        async with http.post(
            platform.url + "/6/tokens", headers=accounts["a"], json={"permissions": perms}
        ) as resp:
            assert resp.status == 201, await resp.text()
            return bearer((await resp.json())["token"])

    sdk_only = await token({"resources": ["sdk"]})
    samples_view = await token({"face_sample": ["view"]})
    img = {"Content-Type": "image/jpeg"}
    async with http.post(
        platform.url + "/6/sdk", data=astronaut_jpeg, headers={**sdk_only, **img}
    ) as resp:
        assert resp.status == 200
    async with http.post(
        platform.url + "/6/sdk", data=astronaut_jpeg, headers={**samples_view, **img}
    ) as resp:
        await assert_error(resp, 403, 11059, "sdk")
    async with http.post(
        platform.url + "/6/detector", data=astronaut_jpeg, headers={**samples_view, **img}
    ) as resp:
        await assert_error(resp, 403, 11059, "face_sample")
    async with http.post(
        platform.url + "/6/objects", data=b"x", headers={**sdk_only, "Content-Type": "text/plain"}
    ) as resp:
        await assert_error(resp, 403, 11059, "object")


async def test_features_are_honest(platform, http):
    async with http.get(platform.url + "/6/features") as resp:
        assert resp.status == 200
        f = await resp.json()
    assert f["estimations"]["face_descriptor"] is True
    assert f["estimations"]["liveness"] is True and f["unvalidated_estimations"] == ["liveness"]
    assert f["estimations"]["glasses"] is False and "glasses" in f["unavailable_estimations"]
    assert f["descriptor_version"] == 200

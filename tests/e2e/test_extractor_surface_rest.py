"""LUNA's documented photo -> face -> match pipeline through REST alone, and the rest of the /6
surface this change serves: detector -> extractor -> POST /6/faces with attribute_id -> attach to
a list -> /6/matcher/faces; the legacy sample routes, /6/liveness, /6/iso; and every operation
of the served OpenAPI document answering on the running platform.

Real models and photos: skimage's astronaut enrolled, a mirrored, scaled, recompressed
astronaut as the probe, an nsface test photo as another person.
"""

from __future__ import annotations

import base64
import io
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import yaml
from lunatest import UUID_RE, assert_error, create_account, jpeg
from PIL import Image
from skimage import data

from services.estimator import model_repo as mr

SAME_PERSON = 0.5  # the matcher's calibrated same-person similarity (DECISIONS: Similarity)


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    repo = mr.models_dir()
    assert mr.manifest_is_valid(repo, check_hashes=False), "run `luna models install` first"
    mirrored = Image.fromarray(data.astronaut()[:, ::-1].copy()).resize(
        (410, 410), Image.Resampling.BILINEAR
    )
    return {
        "enrolled": jpeg(data.astronaut()),
        "probe": jpeg(np.asarray(mirrored), quality=60),
        "stranger": (Path(mr.test_images_dir(repo)) / "test_crop.jpg").read_bytes(),
        "group": (Path(mr.test_images_dir(repo)) / "01.jpg").read_bytes(),
    }


@pytest.fixture(scope="module")
async def accounts(platform, http) -> dict[str, dict[str, str]]:
    _, a = await create_account(http, platform.url)
    _, b = await create_account(http, platform.url)
    return {"a": a, "b": b}


async def _json(resp: aiohttp.ClientResponse, status: int) -> Any:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def detect(http, url: str, auth: dict[str, str], image: bytes) -> str:
    async with http.post(
        f"{url}/6/detector", data=image, headers={**auth, "Content-Type": "image/jpeg"}
    ) as r:
        (img,) = (await _json(r, 201))["images"]
    (sample,) = img["detections"]["samples"]
    return sample["face"]["sample_id"]


async def extract(
    http, url: str, auth: dict[str, str], sample_ids: list[str], query: str = ""
) -> list[dict[str, Any]]:
    async with http.post(f"{url}/6/extractor{query}", json=sample_ids, headers=auth) as r:
        return await _json(r, 201)


async def test_documented_pipeline_detector_extractor_face_list_match(
    platform, http, accounts, photos
) -> None:
    url, a = platform.url, accounts["a"]
    enrolled = await detect(http, url, a, photos["enrolled"])
    probe = await detect(http, url, a, photos["probe"])
    stranger = await detect(http, url, a, photos["stranger"])

    # Extractor: one temporary attribute per sample, samples linked, default descriptor only.
    (attr,) = await extract(http, url, a, [enrolled], "?ttl=600")
    assert UUID_RE.match(attr["attribute_id"])
    assert attr["url"] == f"/6/attributes/{attr['attribute_id']}"
    assert attr["samples"] == [enrolled] and attr["score"] is None
    assert "basic_attributes" not in attr
    async with http.get(url + attr["url"], headers=a) as r:
        stored = await _json(r, 200)
    assert stored["face_descriptor_samples"] == [enrolled]
    assert stored["basic_attributes"] is None and stored["basic_attributes_samples"] == []
    vec = np.frombuffer(base64.b64decode(stored["face_descriptor"]), dtype="<f4")
    assert vec.shape == (128,) and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-3
    async with http.get(f"{url}{attr['url']}/samples", headers=a) as r:
        assert (await _json(r, 200))["samples"] == [enrolled]

    # The documented next steps: a face from the attribute, attached to a list.
    async with http.post(url + "/6/lists", json={"user_data": "extractor"}, headers=a) as r:
        list_id = (await _json(r, 201))["list_id"]
    async with http.post(
        url + "/6/faces",
        json={"attribute": {"attribute_id": attr["attribute_id"]}, "user_data": "astronaut"},
        headers=a,
    ) as r:
        face_id = (await _json(r, 201))["face_id"]
    (other,) = await extract(http, url, a, [stranger])
    async with http.post(
        url + "/6/faces", json={"attribute": {"attribute_id": other["attribute_id"]}}, headers=a
    ) as r:
        other_face = (await _json(r, 201))["face_id"]
    link = {"action": "attach", "face_ids": [face_id, other_face]}
    async with http.patch(f"{url}/6/lists/{list_id}/faces", json=link, headers=a) as r:
        assert r.status == 204, await r.text()

    # The probe (another photo of the same person) finds the astronaut first, the stranger
    # below the same-person threshold.
    (probe_attr,) = await extract(http, url, a, [probe])
    body = {
        "references": [{"type": "attribute", "id": probe_attr["attribute_id"]}],
        "candidates": [{"filters": {"list_id": list_id}, "limit": 5}],
    }
    async with http.post(url + "/6/matcher/faces", json=body, headers=a) as r:
        (match,) = await _json(r, 200)
    result = match["matches"][0]["result"]
    assert [x["face"]["face_id"] for x in result] == [face_id, other_face]
    assert result[0]["similarity"] > SAME_PERSON > result[1]["similarity"]

    # Aggregated: one attribute for both photos of the astronaut, closer to each than the
    # stranger is, with basic attributes estimated by the age and gender models.
    (agg,) = await extract(
        http, url, a, [enrolled, probe], "?aggregate_attributes=1&extract_basic_attributes=1"
    )
    assert agg["samples"] == [enrolled, probe]
    basic = agg["basic_attributes"]
    assert 20 <= basic["age"] <= 70 and basic["gender"] == 0  # Eileen Collins
    assert 0.5 <= basic["gender_score"] <= 1.0 and basic["ethnicity"] is None
    async with http.get(url + agg["url"], headers=a) as r:
        stored = await _json(r, 200)
    assert stored["basic_attributes"] == {
        "age": basic["age"],
        "gender": basic["gender"],
        "ethnicity": None,
    }
    assert stored["basic_attributes_samples"] == [enrolled, probe]
    assert stored["face_descriptor_samples"] == [enrolled, probe]
    body["references"] = [{"type": "attribute", "id": agg["attribute_id"]}]
    async with http.post(url + "/6/matcher/faces", json=body, headers=a) as r:
        (match,) = await _json(r, 200)
    assert match["matches"][0]["result"][0]["face"]["face_id"] == face_id
    assert match["matches"][0]["result"][0]["similarity"] > SAME_PERSON

    # Basic attributes only: no descriptor stored.
    (ba,) = await extract(
        http, url, a, [stranger], "?extract_descriptor=0&extract_basic_attributes=1"
    )
    async with http.get(url + ba["url"], headers=a) as r:
        stored = await _json(r, 200)
    assert stored["face_descriptor"] is None and stored["face_descriptor_samples"] == []
    assert 0 <= stored["basic_attributes"]["age"] <= 100
    assert stored["basic_attributes"]["gender"] in (0, 1)


async def test_extractor_documented_errors(platform, http, accounts, photos) -> None:
    url, a, b = platform.url, accounts["a"], accounts["b"]
    mine = await detect(http, url, a, photos["enrolled"])
    theirs = await detect(http, url, b, photos["stranger"])
    ext = url + "/6/extractor"
    cases: list[tuple[str, Any, int, int, str | None]] = [
        ("", [theirs], 404, 13003, theirs),  # another account's sample is not found
        ("", [mine, str(uuid.uuid4())], 404, 13003, None),
        ("?extract_descriptor=0", [mine], 400, 12031, "extract"),
        ("", [mine] * 2, 400, 12022, None),
        ("", [str(uuid.uuid4()) for _ in range(9)], 400, 12022, None),
        ("", [], 400, 12022, None),
        ("", ["not-a-uuid"], 400, 12022, None),
        ("?ttl=0", [mine], 400, 12012, "ttl"),
        ("?ttl=86401", [mine], 400, 12012, "ttl"),
        ("?score_threshold=0.5", [mine], 501, 12029, None),
    ]
    for query, body, status, code, detail in cases:
        async with http.post(ext + query, json=body, headers=a) as r:
            await assert_error(r, status, code, detail)
    async with http.post(ext, data=b"[]", headers={**a, "Content-Type": "text/plain"}) as r:
        await assert_error(r, 415, 12023)
    async with http.post(ext, json=[mine]) as r:
        await assert_error(r, 401, 12010)
    # Token permissions: extraction creates attributes; ISO and liveness are resources.
    body = {"permissions": {"attribute": ["view"], "resources": ["sdk"]}}
    async with http.post(url + "/6/tokens", json=body, headers=a) as r:
        token = {"Authorization": "Bearer " + (await _json(r, 201))["token"]}
    async with http.post(ext, json=[mine], headers=token) as r:
        await assert_error(r, 403, 11059, "creation")
    for resource, name in (("/6/iso", "iso"), ("/6/liveness", "liveness")):
        async with http.post(
            url + resource, data=photos["enrolled"], headers={**token, "Content-Type": "image/jpeg"}
        ) as r:
            await assert_error(r, 403, 11059, name)
    # Attributes from VisionLabs' binary descriptor files (multipart) are not served.
    form = aiohttp.FormData()
    form.add_field("descriptor", b"\x00" * 512, content_type="application/octet-stream")
    async with http.post(url + "/6/attributes", data=form, headers=a) as r:
        await assert_error(r, 415, 12023, "application/json")
    # A sample from the face sample bucket only: an uploaded image id is not a sample.
    async with http.post(
        url + "/6/images", data=photos["enrolled"], headers={**a, "Content-Type": "image/jpeg"}
    ) as r:
        image_id = (await _json(r, 201))["image_id"]
    async with http.post(ext, json=[image_id], headers=a) as r:
        await assert_error(r, 404, 13003)


async def test_legacy_sample_routes_alias_face_samples(platform, http, accounts, photos) -> None:
    url, a, b = platform.url, accounts["a"], accounts["b"]
    sample = await detect(http, url, a, photos["enrolled"])
    async with http.get(f"{url}/6/samples/{sample}", headers=a) as r:
        assert r.status == 200 and r.content_type == "image/jpeg"
        legacy = await r.read()
    async with http.get(f"{url}/6/samples/faces/{sample}", headers=a) as r:
        assert await r.read() == legacy
    assert Image.open(io.BytesIO(legacy)).size == (250, 250)
    async with http.head(f"{url}/6/samples/{sample}", headers=a) as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(legacy)
    async with http.get(f"{url}/6/samples/{sample}", headers=b) as r:
        await assert_error(r, 404, 13003)
    async with http.delete(f"{url}/6/samples/{sample}", headers=b) as r:
        await assert_error(r, 404, 13003)
    async with http.delete(f"{url}/6/samples/{sample}", headers=a) as r:
        assert r.status == 204
    async with http.get(f"{url}/6/samples/faces/{sample}", headers=a) as r:
        await assert_error(r, 404, 13003)
    async with http.get(f"{url}/6/samples/faces", headers=a) as r:
        await assert_error(r, 405, 12021)


async def test_liveness_every_input_form_and_aggregate(platform, http, accounts, photos) -> None:
    url, a = platform.url, accounts["a"]
    live = url + "/6/liveness"

    def check(item: dict[str, Any]) -> None:
        assert item["status"] == 1 and item["error"]["error_code"] == 0
        lv = item["liveness"]
        assert lv["prediction"] in (0, 1, 2)
        assert 0.0 <= lv["estimations"]["probability"] <= 1.0
        assert 0.0 <= lv["estimations"]["quality"] <= 1.0

    async with http.post(
        live, data=photos["enrolled"], headers={**a, "Content-Type": "image/jpeg"}
    ) as r:
        raw = await _json(r, 200)
    (item,) = raw["images"]
    check(item)
    assert "aggregate_estimations" not in raw
    async with http.post(
        live,
        data=base64.b64encode(photos["enrolled"]),
        headers={**a, "Content-Type": "image/x-jpeg-base64"},
    ) as r:
        (b64_item,) = (await _json(r, 200))["images"]
    assert b64_item == item  # same bytes, same answer
    form = aiohttp.FormData()
    form.add_field("meta", '{"device": "UNKNOWN"}', content_type="application/json")
    form.add_field("one", photos["enrolled"], filename="a.jpg", content_type="image/jpeg")
    form.add_field("two", photos["stranger"], filename="s.jpg", content_type="image/jpeg")
    form.add_field("three", photos["group"], filename="g.jpg", content_type="image/jpeg")
    async with http.post(live + "?aggregate=1", data=form, headers=a) as r:
        multi = await _json(r, 200)
    one, two, three = multi["images"]
    assert (one["filename"], two["filename"], three["filename"]) == ("a.jpg", "s.jpg", "g.jpg")
    check(one)
    check(two)
    # Several faces in one photo are that image's error; the others are answered.
    assert three["status"] == 0 and three["error"]["error_code"] == 11038
    agg = multi["aggregate_estimations"]["liveness"]
    mean = (
        one["liveness"]["estimations"]["probability"]
        + two["liveness"]["estimations"]["probability"]
    ) / 2
    assert agg["estimations"]["probability"] == pytest.approx(mean)
    body = {"images": [{"image": base64.b64encode(photos["stranger"]).decode()}]}
    async with http.post(live, json=body, headers=a) as r:
        (json_item,) = (await _json(r, 200))["images"]
    assert json_item["liveness"] == two["liveness"]
    async with http.post(live, data=b"\x00junk", headers={**a, "Content-Type": "image/jpeg"}) as r:
        (bad,) = (await _json(r, 200))["images"]
    assert bad["status"] == 0 and bad["error"]["error_code"] in (11028, 18002)
    async with http.get(url + "/6/features") as r:
        features = await _json(r, 200)
    assert "liveness" in features["unvalidated_estimations"]


async def test_iso_checks_on_a_real_photo(platform, http, accounts, photos) -> None:
    url, a = platform.url, accounts["a"]
    async with http.post(
        url + "/6/iso", data=photos["enrolled"], headers={**a, "Content-Type": "image/jpeg"}
    ) as r:
        (image,) = (await _json(r, 200))["images"]
    assert image["status"] == 1
    (face,) = image["detections"]["faces"]
    iso = face["iso"]
    checks = {c["name"]: c for c in iso["checks"]}
    assert {"head_yaw", "head_pitch", "head_roll", "eye_distance", "image_format"} <= set(checks)
    for c in checks.values():
        assert c["result"] in (0, 1)
    # The astronaut photo is 512x512 with a turned head and a small face: not ISO compliant.
    assert checks["image_format"]["object_value"] == "JPEG" and checks["image_format"]["result"]
    assert 30 < checks["eye_distance"]["object_value"] < 120
    assert iso["status"] == int(all(c["result"] for c in checks.values()))
    not_checked = {c["name"]: c["error"]["error_code"] for c in iso["not_checked"]}
    assert not_checked["gaze"] == 11044 and "gaze" not in checks
    # Several faces with the ISO default policy (one face): that image's error.
    async with http.post(
        url + "/6/iso", data=photos["group"], headers={**a, "Content-Type": "image/jpeg"}
    ) as r:
        (group,) = (await _json(r, 200))["images"]
    assert group["status"] == 0 and group["error"]["error_code"] == 11038
    async with http.post(url + "/6/iso", data=photos["enrolled"]) as r:
        await assert_error(r, 401, 12010)
    # A face warp: image checks only; what needs the source photo is listed as not checked.
    sample = await detect(http, url, a, photos["enrolled"])
    async with http.get(f"{url}/6/samples/faces/{sample}", headers=a) as r:
        warp = await r.read()
    async with http.post(
        url + "/6/iso?image_type=1", data=warp, headers={**a, "Content-Type": "image/jpeg"}
    ) as r:
        (image,) = (await _json(r, 200))["images"]
    (face,) = image["detections"]["faces"]
    names = {c["name"] for c in face["iso"]["checks"]}
    assert "blurriness_quality" in names and "head_yaw" not in names
    not_checked = {c["name"]: c["error"]["error_code"] for c in face["iso"]["not_checked"]}
    assert not_checked["head_yaw"] == 12031 and not_checked["eye_distance"] == 12031


async def test_every_served_operation_answers_on_the_running_platform(platform, http) -> None:
    """Not LUNA's 404 (12013) nor 405 for any (path, method) of the served document, and
    never a 500, even for requests without a valid body. A throwaway account: the walk
    includes DELETE /6/account."""
    _, auth = await create_account(http, platform.url)
    async with http.get(
        platform.url + "/6/docs/spec", headers={"Accept": "application/x-yaml"}
    ) as r:
        spec = yaml.safe_load(await r.text())
    unanswered = []
    statuses: dict[int, int] = {}
    operations = [
        (path, method)
        for path, item in spec["paths"].items()
        for method in ("get", "post", "put", "patch", "delete", "head", "options")
        if method in item and path != "/6/ws"
    ]
    # Deleting the account last keeps every other request authenticated.
    operations.sort(key=lambda op: op == ("/6/account", "delete"))
    assert len(operations) > 140
    for path, method in operations:
        concrete = re.sub(
            r"\{([^}]+)\}",
            lambda m: "faces" if m.group(1) == "samples_type" else str(uuid.uuid4()),
            path,
        )
        async with http.request(
            method.upper(),
            platform.url + concrete,
            headers=auth,
            allow_redirects=False,
        ) as r:
            body = await r.read()
            statuses[r.status] = statuses.get(r.status, 0) + 1
            code = None
            if body and r.content_type == "application/json":
                code = (await r.json()).get("error_code") if body.startswith(b"{") else None
            if r.status >= 500 or r.status == 405 or code == 12013:
                unanswered.append(f"{method.upper()} {path}: {r.status} {body[:120]!r}")
    assert not unanswered, "\n".join(unanswered)
    # The requests got past authentication into the handlers.
    assert statuses.get(401, 0) + statuses.get(403, 0) < len(operations) // 10, statuses


async def _sdk_descriptor(http, url: str, auth: dict[str, str], image: bytes) -> str:
    async with http.post(
        f"{url}/6/sdk?detect_face=1&estimate_face_descriptor=1&multiface_policy=2",
        data=image,
        headers={**auth, "Content-Type": "image/jpeg"},
    ) as r:
        (img,) = (await _json(r, 200))["images_estimations"]
    return img["estimations"][0]["face"]["attributes"]["descriptor"]["sdk_descriptor"]


async def test_lunas_descriptor_entities_in_raw_matching_and_raw_verification(
    platform, http, accounts, photos
) -> None:
    url, a = platform.url, accounts["a"]
    enrolled = await _sdk_descriptor(http, url, a, photos["enrolled"])
    probe = await _sdk_descriptor(http, url, a, photos["probe"])
    stranger = await _sdk_descriptor(http, url, a, photos["stranger"])
    # LUNA's shape: {type, id, data} (LUNA ID's DescriptorRaw), plus version for raw ones.
    body = {
        "references": [{"type": "sdk_descriptor", "id": "probe", "data": probe}],
        "candidates": [
            {"type": "sdk_descriptor", "id": "same", "data": enrolled},
            {"type": "raw_descriptor", "id": "other", "data": stranger, "version": 200},
        ],
    }
    async with http.post(url + "/6/matcher/raw", json=body, headers=a) as r:
        (ref,) = (await _json(r, 200))["matches"]
    sims = {m["candidate_id"]: m["similarity"] for m in ref["matches"]}
    assert ref["reference_id"] == "probe"
    assert sims["same"] > SAME_PERSON > sims["other"]
    # The earlier `descriptor` name answers the same.
    old = {
        k: [{**e, "descriptor": e.pop("data")} for e in [dict(x) for x in v]]
        for k, v in body.items()
    }
    async with http.post(url + "/6/matcher/raw", json=old, headers=a) as r:
        (ref_old,) = (await _json(r, 200))["matches"]
    assert {m["candidate_id"]: m["similarity"] for m in ref_old["matches"]} == sims

    async with http.post(
        url + "/6/verifiers", json={"policies": {"verification_threshold": 0.5}}, headers=a
    ) as r:
        verifier_id = (await _json(r, 201))["verifier_id"]
    async with http.post(f"{url}/6/verifiers/{verifier_id}/raw", json=body, headers=a) as r:
        verified = await _json(r, 201)
    (vref,) = verified["matches"]
    status = {m["candidate_id"]: m["status"] for m in vref["matches"]}
    assert status == {"same": True, "other": False}

    refused = [
        ({"type": "sdk_descriptor", "id": "x"}, 12022, "references.0.data"),
        ({"type": "sdk_descriptor", "data": 7}, 12022, "str type expected"),
        ({"type": "xpk_file", "data": probe}, 12035, None),
    ]
    for entity, code, detail in refused:
        bad = {"references": [entity], "candidates": body["candidates"]}
        async with http.post(url + "/6/matcher/raw", json=bad, headers=a) as r:
            await assert_error(r, 400, code, detail)
        async with http.post(f"{url}/6/verifiers/{verifier_id}/raw", json=bad, headers=a) as r:
            await assert_error(r, 400, code, detail)
    bad = {
        "references": [{"type": "sdk_descriptor", "data": "!!"}],
        "candidates": body["candidates"],
    }
    async with http.post(url + "/6/matcher/raw", json=bad, headers=a) as r:
        await assert_error(r, 400, 12022, "base64")
    async with http.post(f"{url}/6/verifiers/{verifier_id}/raw", json=bad, headers=a) as r:
        await assert_error(r, 400, 18001)

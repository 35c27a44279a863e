"""Backport 3 and the second recognition model (MobileFaceNet, descriptor version 201).

LUNA 3 takes a version with each raw descriptor (`/4/handlers/verify/raw`); every version this
platform extracts is accepted there, sized by its own model, and descriptors of one version
are compared only with their own version. An SDK descriptor and what `/4` extracts are the
installation's version (LUNA_DEFAULT_DESCRIPTOR_VERSION)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import numpy as np
import pytest
from lunatest import create_account, json_of, same_person_photos

from services.common import descriptors, errors
from services.estimator import model_repo as mr
from services.gateway.backport3 import extract as ex

MFN = mr.MOBILEFACENET_DESCRIPTOR_VERSION


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return same_person_photos()


async def _descriptor(http: Any, url: str, auth: dict[str, str], image: bytes, v: int) -> bytes:
    """The image's face descriptor of version `v`, through the /6 detector and extractor."""
    async with http.post(
        f"{url}/6/detector", data=image, headers={**auth, "Content-Type": "image/jpeg"}
    ) as r:
        (img,) = (await json_of(r, 201))["images"]
    sample = img["detections"]["samples"][0]["face"]["sample_id"]
    query = f"?descriptor_version={v}&ttl=600"
    async with http.post(f"{url}/6/extractor{query}", json=[sample], headers=auth) as r:
        (attr,) = await json_of(r, 201)
    async with http.get(f"{url}/6/attributes/{attr['attribute_id']}", headers=auth) as r:
        return base64.b64decode((await json_of(r, 200))["face_descriptor"])


def _entity(name: str, raw: bytes, version: int) -> dict[str, Any]:
    data = {"descriptor": base64.b64encode(raw).decode(), "version": version}
    return {"id": name, "type": "raw_descriptor", "data": data}


async def _bp3_token(http: Any, url: str) -> dict[str, str]:
    email = f"v201{uuid.uuid4().hex[:10]}@example.com"
    body = {"organization_name": "Versions", "email": email, "password": "secret123"}
    async with http.post(url + "/4/accounts", json=body) as r:
        return {"X-Auth-Token": (await json_of(r, 201))["token"]}


async def test_raw_verification_of_version_201(platform: Any, http: Any, photos: dict) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    mfn = {k: await _descriptor(http, url, auth, img, MFN) for k, img in photos.items()}
    assert {len(v) for v in mfn.values()} == {192 * 4}
    sface = await _descriptor(http, url, auth, photos["probe"], 200)
    tok = await _bp3_token(http, platform.runtime["backport3_url"])
    verify = platform.runtime["backport3_url"] + "/4/handlers/verify/raw"

    body = {
        "references": [_entity("probe", mfn["probe"], MFN)],
        "candidates": [
            _entity("stranger", mfn["stranger"], MFN),
            _entity("astronaut", mfn["enrolled"], MFN),
        ],
    }
    async with http.post(verify, json=body, headers=tok) as r:
        (ref,) = (await json_of(r, 200))["matches"]
    assert ref["reference_id"] == "probe"
    best, other = ref["matches"]
    # The same person first, scored by the 201 model (same-person pairs score 0.91-0.95).
    assert best["candidate_id"] == "astronaut" and other["candidate_id"] == "stranger"
    assert best["similarity"] > 0.85 > other["similarity"]

    # A 201 descriptor of the wrong size is refused like any raw descriptor of a bad length.
    body["references"] = [_entity("probe", mfn["probe"][: 128 * 4], MFN)]
    async with http.post(verify, json=body, headers=tok) as r:
        assert (await json_of(r, 400))["error_code"] == errors.BAD_DESCRIPTOR_LENGTH
    # Versions are never compared with each other.
    body["references"] = [_entity("probe", sface, 200)]
    async with http.post(verify, json=body, headers=tok) as r:
        assert (await json_of(r, 400))["error_code"] == errors.DESCRIPTOR_VERSION_MISMATCH
    # A version no model here extracts is still "not registered".
    body["references"] = [_entity("probe", mfn["probe"], 46)]
    async with http.post(verify, json=body, headers=tok) as r:
        assert (await json_of(r, 400))["error_code"] == errors.DESCRIPTOR_VERSION_NOT_REGISTERED


def test_sdk_descriptors_are_the_installation_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare packed vector (`/4` upload, `sdk_descriptor`) has the installation's size."""
    v192 = np.ones(descriptors.VERSION_DIMS[MFN], "<f4").tobytes()
    v128 = np.ones(128, "<f4").tobytes()
    monkeypatch.setenv("LUNA_DEFAULT_DESCRIPTOR_VERSION", str(MFN))
    assert ex.installed_version() == MFN
    assert len(ex.given_descriptor(v192)) == len(v192)
    with pytest.raises(errors.LunaError) as refused:
        ex.given_descriptor(v128)
    assert refused.value.code == errors.SDK_DESCRIPTOR_INVALID
    monkeypatch.setenv("LUNA_DEFAULT_DESCRIPTOR_VERSION", "200")
    assert len(ex.given_descriptor(v128)) == len(v128)

"""Backport 3 (the LUNA 3 API, /4) end to end, the way a LUNA 3 client uses it: through its own
listener (port 5140 by default; a free port under `luna up --free-ports`, recorded in
runtime.json), with real photos and real models. Also the same routes under /4 on the main
port, the same face through /6, the ws event stream, account isolation, and the documented
error of every bad input."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import numpy as np
import pytest
from lunatest import REQUEST_ID_RE, UUID_RE, basic
from PIL import Image
from skimage import data

from services.estimator import model_repo as mr

SAME_PERSON = 0.5  # our similarity puts the model's same-person threshold at 0.5


def jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def photo(name: str) -> bytes:
    return (Path(mr.test_images_dir(mr.models_dir())) / name).read_bytes()


ASTRONAUT = jpeg(data.astronaut())
MIRROR = jpeg(np.ascontiguousarray(data.astronaut()[:, ::-1]))
BLANK = jpeg(np.full((240, 320, 3), 128, np.uint8))


async def err(resp: aiohttp.ClientResponse, status: int, code: int) -> dict[str, Any]:
    """A LUNA 3 error: status, error_code and detail (Backport 3's required fields)."""
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert body["error_code"] == code, body
    assert "detail" in body and body["detail"] not in (None, ""), body
    assert REQUEST_ID_RE.match(resp.headers["Luna-Request-Id"])
    return body


class Client:
    """A LUNA 3 client: one account, its credentials, one base URL."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.email = f"bp3{uuid.uuid4().hex[:10]}@example.com"
        self.password = "secretpassword"
        self.token = ""

    @property
    def basic(self) -> dict[str, str]:
        return basic(self.email, self.password)

    @property
    def tok(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}

    async def register(self) -> Client:
        async with self.http.post(
            self.url + "/4/accounts",
            json={"organization_name": "Horns", "email": self.email, "password": self.password},
        ) as r:
            assert r.status == 201, await r.text()
            self.token = (await r.json())["token"]
        return self

    def req(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.tok, **kw.pop("headers", {})}
        return self.http.request(method, self.url + path, headers=headers, **kw)

    async def call(self, method: str, path: str, status: int, **kw: Any) -> Any:
        async with self.req(method, path, **kw) as r:
            body = await r.read()
            assert r.status == status, body
            assert r.headers.get("Access-Control-Allow-Origin") == "*"
            return await r.json() if body and "json" in r.content_type else body

    async def image(self, path: str, image: bytes, status: int = 201, **params: Any) -> Any:
        return await self.call(
            "POST", path, status, data=image, params=params,
            headers={"Content-Type": "image/png" if image[:4] == b"\x89PNG" else "image/jpeg"},
        )  # fmt: skip


@pytest.fixture(scope="module")
def bp3_url(platform: Any) -> str:
    url = platform.runtime["backport3_url"]
    assert url and url != platform.url
    return url


@pytest.fixture(scope="module")
async def world(bp3_url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
    """Account A with person `astro` (astronaut photo) and person `man` (test3.jpg) in a
    persons list; built through the listener exactly like a LUNA 3 client would."""
    a = await Client(http, bp3_url).register()
    astro_desc = (await a.image("/4/storage/descriptors", ASTRONAUT))["faces"][0]["id"]
    astro = (
        await a.call("POST", "/4/storage/persons", 201,
                     json={"user_data": "astronaut", "external_id": "nasa-1"})
    )["person_id"]  # fmt: skip
    await a.call(
        "PATCH", f"/4/storage/persons/{astro}/linked_descriptors", 204,
        params={"descriptor_id": astro_desc, "do": "attach"},
    )  # fmt: skip
    lst = (await a.call("POST", "/4/storage/lists", 201, json={"list_data": "staff"}))["list_id"]
    await a.call(
        "PATCH", f"/4/storage/persons/{astro}/linked_lists", 204,
        params={"list_id": lst, "do": "attach"},
    )  # fmt: skip
    # The extractor handler puts its person into the policy's list.
    got = await a.call("PATCH", "/4/handlers/extractor", 200, json={"list_id": lst})
    assert got == {"version": 2}
    made = await a.image("/4/handlers/extractor", photo("test3.jpg"), user_data="man")
    return {
        "a": a, "astro": astro, "astro_desc": astro_desc, "list": lst,
        "man": made["person_id"], "man_desc": made["face"]["id"],
    }  # fmt: skip


async def test_luna3_client_flow(world: dict[str, Any], platform: Any) -> None:
    w, a = world, world["a"]
    # The account and its tokens (Basic only).
    assert await a.call("GET", "/4/account", 200, headers=a.basic) == {
        "organization_name": "Horns", "email": a.email, "suspended": False,
    }  # fmt: skip
    made = await a.call(
        "POST", "/4/account/tokens", 201, json={"token_data": "south camera"}, headers=a.basic
    )
    tokens = await a.call("GET", "/4/account/tokens", 200, headers=a.basic)
    assert tokens["count"] == 2
    assert {"token_data": "south camera", "id": made["token"]} in tokens["tokens"]

    # The person, its descriptor and list, as stored.
    person = await a.call("GET", f"/4/storage/persons/{w['astro']}", 200)
    assert person["descriptors"] == [w["astro_desc"]] and person["lists"] == [w["list"]]
    assert (person["user_data"], person["external_id"]) == ("astronaut", "nasa-1")
    desc = await a.call("GET", f"/4/storage/descriptors/{w['astro_desc']}", 200)
    assert desc["person_id"] == w["astro"] and desc["lists"] == []
    lst = await a.call("GET", f"/4/storage/lists/{w['list']}", 200)
    assert lst["count"] == 2 and {p["id"] for p in lst["persons"]} == {w["astro"], w["man"]}

    # Identify the astronaut from another photo (its mirror image): first candidate.
    async with aiohttp.ClientSession() as ws_http:
        async with ws_http.ws_connect(
            a.url + "/4/ws", headers=a.tok, params={"event_type": "match"}
        ) as ws:
            probe = (await a.image("/4/storage/descriptors", MIRROR))["faces"][0]["id"]
            got = await a.call(
                "POST", "/4/matching/identify", 201,
                params={"descriptor_id": probe, "list_id": w["list"]},
            )  # fmt: skip
            first, second = got["candidates"]
            assert first["person_id"] == w["astro"] and first["descriptor_id"] == w["astro_desc"]
            assert first["similarity"] > SAME_PERSON > second["similarity"]
            assert (first["user_data"], first["external_id"]) == ("astronaut", "nasa-1")
            assert second["person_id"] == w["man"]
            # ... and the event arrives on /4/ws (the extraction is filtered out by type).
            message = await asyncio.wait_for(ws.receive_json(), 30)
    assert message["source"] == "identify" and message["event_type"] == "match"
    assert message["authorization"] == {"token_id": a.token, "token_data": ""}
    assert message["result"] == got and message["template"] == {"descriptor_id": probe}
    assert message["candidate"] == {"list_id": w["list"], "list_data": "staff", "list_type": 1}

    # Verify against a different person: below the threshold.
    got = await a.call(
        "POST", "/4/matching/verify", 201, params={"descriptor_id": probe, "person_id": w["man"]}
    )
    (cand,) = got["candidates"]
    assert cand["person_id"] == w["man"] and cand["similarity"] < SAME_PERSON
    handler = await a.image("/4/handlers/verify", MIRROR, person_id=w["man"])
    assert handler["status"] is False and handler["candidates"][0]["similarity"] < SAME_PERSON
    handler = await a.image("/4/handlers/verify", MIRROR, person_id=w["astro"])
    assert handler["status"] is True and UUID_RE.match(handler["face"]["id"])

    # Search by image: the same answer in one call; the face carries what was estimated.
    got = await a.image(
        "/4/matching/search", MIRROR, list_id=w["list"], limit=1, estimate_attributes=1
    )
    assert [c["person_id"] for c in got["candidates"]] == [w["astro"]]
    face = got["face"]
    assert UUID_RE.match(face["id"]) and 0 < face["score"] <= 1
    assert set(face["rect"]) == {"x", "y", "width", "height"} and "rectISO" in face
    assert 0 <= face["attributes"]["age"] <= 100 and face["attributes"]["gender"] in (0, 1)

    # Explicit candidates: persons, or descriptors.
    got = await a.image("/4/matching/search", MIRROR, person_ids=f"{w['man']},{w['astro']}")
    assert [c["person_id"] for c in got["candidates"]] == [w["astro"], w["man"]]
    got = await a.image("/4/matching/search", MIRROR, descriptor_ids=w["astro_desc"])
    assert got["candidates"] == [{"id": w["astro_desc"], "similarity": pytest.approx(
        first["similarity"], abs=0.05)}]  # fmt: skip
    got = await a.call(
        "POST", "/4/matching/match", 201,
        params={"descriptor_id": probe, "descriptor_ids": f"{w['man_desc']},{w['astro_desc']}"},
    )  # fmt: skip
    assert [c["id"] for c in got["candidates"]] == [w["astro_desc"], w["man_desc"]]

    # Identify handler with its policies (the list, the limit).
    await a.call("PATCH", "/4/handlers/identify", 200, json={"list_id": w["list"], "limit": 1})
    got = await a.image("/4/handlers/identify", MIRROR)
    assert [c["person_id"] for c in got["candidates"]] == [w["astro"]]
    policies = (await a.call("GET", "/4/handlers/identify", 200))["policies"]
    assert policies["limit"] == 1 and policies["list_id"] == w["list"]

    # The same face through /6: the descriptor is a face carrying its person's fields.
    async with a.http.get(f"{platform.url}/6/faces/{w['astro_desc']}", headers=a.basic) as r:
        assert r.status == 200, await r.text()
        face6 = await r.json()
    assert (face6["user_data"], face6["external_id"]) == ("astronaut", "nasa-1")
    assert face6["lists"] == [w["list"]]

    # And the same API under /4 on the main port.
    main = Client(a.http, platform.url)
    main.token = a.token
    assert (await main.call("GET", f"/4/storage/persons/{w['astro']}", 200)) == person


async def test_descriptors_estimations_portraits_and_lists(world: dict[str, Any]) -> None:
    a = world["a"]
    got = await a.image(
        "/4/storage/descriptors", ASTRONAUT, estimate_attributes=1, estimate_quality=1,
        estimate_head_pose=1, estimate_emotions=1, extract_exif=1,
    )  # fmt: skip
    (face,) = got["faces"]
    assert set(face["quality"]) == {"dark", "light", "saturation", "blurriness"}
    assert face["quality"]["saturation"] == 1
    assert set(face["attributes"]) == {"age", "gender", "emotions", "head_pose"}
    assert abs(face["attributes"]["head_pose"]["yaw"]) < 45
    assert got["exif"] == {}
    # extract_descriptor=0: detection only, nothing stored.
    got = await a.image("/4/storage/descriptors", ASTRONAUT, extract_descriptor=0)
    assert "id" not in got["faces"][0]
    # A descriptor given as bytes (the packed float32 vector).
    vec = np.random.default_rng(1).standard_normal(128).astype("<f4")
    got = await a.call(
        "POST", "/4/storage/descriptors", 201, data=base64.b64encode(vec.tobytes()),
        headers={"Content-Type": "application/x-vl-face-descriptor-base64"},
    )  # fmt: skip
    raw_id = got["faces"][0]["id"]

    # Head angle thresholds: a face turned more than the threshold is not extracted.
    yaw = abs(face["attributes"]["head_pose"]["yaw"])
    if yaw > 0.5:
        async with a.req("POST", "/4/storage/descriptors", data=ASTRONAUT,
                         headers={"Content-Type": "image/jpeg"},
                         params={"yaw__lt": str(yaw / 2)}) as r:  # fmt: skip
            await err(r, 400, 36003)
    got = await a.image("/4/storage/descriptors", ASTRONAUT, yaw__lt=str(yaw + 1), roll__lt=500)
    assert len(got["faces"]) == 1  # out-of-range thresholds are ignored

    # Portraits and thumbnails; a portrait is a warped image LUNA 3 can extract again.
    portrait = await a.call("GET", f"/4/storage/portraits/{world['astro_desc']}", 200)
    assert Image.open(io.BytesIO(portrait)).format == "JPEG"
    assert Image.open(io.BytesIO(portrait)).size == (250, 250)
    got = await a.image("/4/storage/descriptors", portrait, warped_image=1)
    (warp,) = got["faces"]
    assert set(warp) == {"id", "score"} and UUID_RE.match(warp["id"])
    for size in (32, 64, 96, 160):
        thumb = await a.call("GET", f"/4/storage/portraits/{world['astro_desc']}_{size}", 200)
        assert max(Image.open(io.BytesIO(thumb)).size) == size

    # A descriptors list, the linker, match.
    dl = (await a.call("POST", "/4/storage/lists", 201, params={"type": "descriptors"}, json={}))[
        "list_id"
    ]
    await a.call(
        "PATCH", "/4/storage/linker", 204,
        json={"action": "attach", "descriptor_ids": [world["astro_desc"], raw_id], "list_id": dl},
    )  # fmt: skip
    assert (await a.call("GET", f"/4/storage/descriptors/{raw_id}/linked_lists", 200)) == {
        "lists": [dl]
    }
    got = await a.call(
        "POST", "/4/matching/match", 201, params={"person_id": world["astro"], "list_id": dl}
    )
    assert got["candidates"][0] == {"id": world["astro_desc"], "similarity": pytest.approx(1.0)}
    lists = await a.call("GET", "/4/storage/lists", 200)
    assert lists["descriptors_list_count"] >= 1 and lists["persons_list_count"] >= 1
    assert {"list_data": "", "count": 2, "id": dl} in lists["lists"]["descriptor_lists"]
    await a.call(
        "PATCH", f"/4/storage/descriptors/{raw_id}/linked_lists", 204,
        params={"list_id": dl, "do": "detach"},
    )  # fmt: skip
    assert (await a.call("GET", f"/4/storage/lists/{dl}", 200))["count"] == 1
    await a.call("DELETE", f"/4/storage/lists/{dl}", 204)
    await a.call("GET", f"/4/storage/lists/{dl}", 404)


async def test_raw_batch_verification_json_and_msgpack(world: dict[str, Any]) -> None:
    a = world["a"]
    rng = np.random.default_rng(7)
    v1 = rng.standard_normal(128).astype("<f4")
    v2 = rng.standard_normal(128).astype("<f4")

    def entity(i: str, vec: np.ndarray, binary: bool) -> dict[str, Any]:
        raw = vec.tobytes() if binary else base64.b64encode(vec.tobytes()).decode()
        return {"id": i, "type": "raw_descriptor", "data": {"descriptor": raw, "version": 200}}

    for binary in (False, True):
        body = {
            "references": [entity("r", v1, binary)],
            "candidates": [entity("same", v1, binary), entity("other", v2, binary)],
        }
        if binary:
            kw: dict[str, Any] = {
                "data": msgpack.packb(body),
                "headers": {"Content-Type": "application/msgpack"},
            }
        else:
            kw = {"json": body}
        got = await a.call("POST", "/4/handlers/verify/raw", 200, **kw)
        (ref,) = got["matches"]
        assert ref["reference_id"] == "r"
        assert [m["candidate_id"] for m in ref["matches"]] == ["same", "other"]
        assert ref["matches"][0]["status"] is True and ref["matches"][1]["status"] is False


async def test_accounts_are_isolated(world: dict[str, Any], bp3_url: str, http: Any) -> None:
    w = world
    b = await Client(http, bp3_url).register()
    async with b.req("GET", f"/4/storage/persons/{w['astro']}") as r:
        await err(r, 404, 22007)
    async with b.req("GET", f"/4/storage/descriptors/{w['astro_desc']}") as r:
        await err(r, 404, 11018)
    async with b.req("GET", f"/4/storage/portraits/{w['astro_desc']}") as r:
        await err(r, 404, 13003)
    async with b.req(
        "POST", "/4/matching/identify",
        params={"person_id": w["astro"], "list_id": w["list"]},
    ) as r:  # fmt: skip
        await err(r, 400, 22007)
    mine = (await b.image("/4/storage/descriptors", MIRROR))["faces"][0]["id"]
    async with b.req(
        "POST", "/4/matching/identify", params={"descriptor_id": mine, "list_id": w["list"]}
    ) as r:
        await err(r, 400, 22003)
    async with b.req(
        "PATCH", f"/4/storage/persons/{w['astro']}/linked_descriptors",
        params={"descriptor_id": mine, "do": "attach"},
    ) as r:  # fmt: skip
        await err(r, 404, 22007)
    assert (await b.call("GET", "/4/storage/persons", 200))["count"] == 0
    assert (await b.call("GET", "/4/storage/descriptors", 200))["count"] == 1


async def test_service_resources(bp3_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(bp3_url + "/version") as r:
        version = (await r.json())["Version"]
    assert {"luna_api", "luna_remote_sdk", "luna_faces", "LUNA PLATFORM", "luna_backport3"} <= set(
        version
    )
    async with http.get(bp3_url + "/4/healthcheck", params={"include_luna_services": 1}) as r:
        assert r.status == 200 and (await r.json())["execution_time"] >= 0
    async with http.get(bp3_url + "/metrics") as r:
        text = await r.text()
        assert r.status == 200 and r.content_type == "text/plain"
    assert 'request_count_total{path="GET:/4/healthcheck",status_code="200"}' in text
    async with http.get(bp3_url + "/4/plugins") as r:
        assert await r.json() == {"plugins": []}
    async with http.get(bp3_url + "/4/docs/spec", headers={"Accept": "application/x-yaml"}) as r:
        assert r.status == 200 and "/4/matching/search" in await r.text()
    async with http.get(bp3_url + "/4/docs/spec", headers={"Accept": "application/xml"}) as r:
        await err(r, 415, 12024)
    async with http.get(bp3_url + "/4/config", headers={"Accept": "application/json"}) as r:
        assert r.status == 200 and "LUNA_BACKPORT3_PORT" in await r.json()
    async with http.options(bp3_url + "/4/storage/persons") as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["Access-Control-Allow-Methods"] == "*"
        assert r.headers["Access-Control-Allow-Headers"] == "*"
        assert r.headers["Access-Control-Max-Age"] == "86400"
        assert set(r.headers["Allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    async with http.options(bp3_url + "/4/ws") as r:
        assert r.status == 200 and "Allow" not in r.headers
    async with http.options(bp3_url + "/version") as r:
        assert r.status == 200 and r.headers["Allow"] == "GET, OPTIONS"
    async with http.get(bp3_url + "/healthcheck", allow_redirects=False) as r:
        assert r.status == 308 and r.headers["Location"] == "/4/healthcheck"
    async with http.get(bp3_url + "/4/docs/dev") as r:
        assert r.status == 200 and "text/html" in r.content_type


async def test_documented_errors(world: dict[str, Any], bp3_url: str, http: Any) -> None:
    w, a = world, world["a"]
    url = bp3_url

    async def check(method: str, path: str, status: int, code: int, **kw: Any) -> dict:
        async with http.request(method, url + path, **kw) as r:
            return await err(r, status, code)

    img = {"Content-Type": "image/jpeg", **a.tok}
    new = {"organization_name": "x", "email": a.email, "password": "12345678"}
    # Accounts and auth.
    await check("POST", "/4/accounts", 400, 11011, json=new)
    await check("POST", "/4/accounts", 400, 12022, json={**new, "email": "not-an-email"})
    await check("POST", "/4/accounts", 400, 12022, json={**new, "password": "short"})
    await check("POST", "/4/accounts", 400, 12017, data=b"{}")
    await check("GET", "/4/account", 401, 12010)
    await check("GET", "/4/account", 401, 36002, headers={"Authorization": "Basic !!!"})
    await check("GET", "/4/storage/persons", 401, 36002, headers={"Authorization": "Bearer x"})
    await check("GET", "/4/account", 401, 11002, headers=basic(a.email, "wrong-password"))
    await check("GET", "/4/storage/persons", 401, 12001, headers={"X-Auth-Token": "nope"})
    await check("GET", "/4/storage/persons", 401, 11002,
                headers={"X-Auth-Token": str(uuid.uuid4())})  # fmt: skip
    await check("GET", f"/4/account/tokens/{uuid.uuid4()}", 404, 11022, headers=a.basic)
    await check("PATCH", f"/4/account/tokens/{uuid.uuid4()}", 404, 11022, headers=a.basic,
                json={"token_data": "x"})  # fmt: skip
    await check("POST", "/4/account/tokens", 400, 12022, headers=a.basic, json={"token_data": 1})
    await check("DELETE", "/4/account/tokens", 400, 12022, headers=a.basic, json={"tokens": []})
    # Extraction.
    d = "/4/storage/descriptors"
    await check(
        "POST", d, 400, 12017, data=ASTRONAUT, headers={**a.tok, "Content-Type": "text/plain"}
    )
    await check("POST", d, 400, 100033, data=b"not an image", headers=img)
    await check("POST", d, 500, 4003, data=BLANK, headers=img)
    await check("POST", d, 400, 36003, data=ASTRONAUT, headers=img, params={"score_threshold": 1})
    await check("POST", d, 400, 12012, data=ASTRONAUT, headers=img,
                params={"estimate_attributes": 5})  # fmt: skip
    await check("POST", d, 400, 11043, data=ASTRONAUT, headers=img, params={"warped_image": 1})
    await check("POST", d, 400, 12035, data=b"xpk",
                headers={**a.tok, "Content-Type": "application/x-vl-xpk"})  # fmt: skip
    await check("POST", d, 400, 12038, data=b"\0" * 100,
                headers={**a.tok, "Content-Type": "application/x-vl-face-descriptor"})  # fmt: skip
    await check("POST", d, 500, 18001, data=b"@@@",
                headers={**a.tok, "Content-Type": "image/x-jpeg-base64"})  # fmt: skip
    await check("POST", d, 403, 11044, data=ASTRONAUT, headers=img,
                params={"estimate_ethnicities": 1})  # fmt: skip
    await check("GET", d, 400, 12012, headers=a.tok, params={"page_size": 5000})
    await check("GET", f"{d}/{uuid.uuid4()}", 404, 11018, headers=a.tok)
    await check("PATCH", f"{d}/{w['astro_desc']}/linked_lists", 400, 12014, headers=a.tok,
                params={"do": "attach"})  # fmt: skip
    await check("GET", f"/4/storage/portraits/{uuid.uuid4()}", 404, 13003, headers=a.tok)
    await check("GET", f"/4/storage/portraits/{w['astro_desc']}_33", 404, 13003, headers=a.tok)
    # Persons and lists.
    p = "/4/storage/persons"
    await check("POST", p, 400, 12022, headers=a.tok, json={"user_data": "x" * 129})
    await check("GET", f"{p}/{uuid.uuid4()}", 404, 22007, headers=a.tok)
    await check("PATCH", f"{p}/{w['astro']}", 400, 12022, headers=a.tok, json={})
    await check("DELETE", f"{p}/{uuid.uuid4()}", 404, 22007, headers=a.tok)
    await check("PATCH", f"{p}/{w['astro']}/linked_descriptors", 400, 11018, headers=a.tok,
                params={"descriptor_id": str(uuid.uuid4()), "do": "attach"})  # fmt: skip
    await check("PATCH", f"{p}/{w['astro']}/linked_descriptors", 409, 22008, headers=a.tok,
                params={"descriptor_id": w["astro_desc"], "do": "attach"})  # fmt: skip
    await check("PATCH", f"{p}/{w['man']}/linked_descriptors", 409, 22008, headers=a.tok,
                params={"descriptor_id": w["astro_desc"], "do": "attach"})  # fmt: skip
    await check("PATCH", f"{p}/{w['man']}/linked_descriptors", 404, 36004, headers=a.tok,
                params={"descriptor_id": w["astro_desc"], "do": "detach"})  # fmt: skip
    await check("PATCH", f"{p}/{w['astro']}/linked_lists", 400, 12014, headers=a.tok,
                params={"do": "attach"})  # fmt: skip
    dl = (await a.call("POST", "/4/storage/lists", 201, params={"type": "descriptors"}))["list_id"]
    await check("PATCH", f"{p}/{w['astro']}/linked_lists", 400, 36001, headers=a.tok,
                params={"list_id": dl, "do": "attach"})  # fmt: skip
    await check("GET", f"/4/storage/lists/{uuid.uuid4()}", 404, 22003, headers=a.tok)
    await check("PATCH", f"/4/storage/lists/{uuid.uuid4()}", 404, 22003, headers=a.tok,
                json={"list_data": "x"})  # fmt: skip
    await check("DELETE", "/4/storage/lists", 404, 22003, headers=a.tok,
                json={"lists": [dl, str(uuid.uuid4())]})  # fmt: skip
    await a.call("GET", f"/4/storage/lists/{dl}", 200)  # all or nothing
    await check("POST", "/4/storage/lists", 400, 12022, headers=a.tok, json={"list_data": 5})
    await check("PATCH", "/4/storage/linker", 400, 12022, headers=a.tok,
                json={"action": "join", "person_ids": [w["astro"]], "list_id": dl})  # fmt: skip
    # Matching.
    m = "/4/matching"
    await check("POST", f"{m}/identify", 400, 12016, headers=a.tok, params={"list_id": w["list"]})
    await check("POST", f"{m}/identify", 400, 22007, headers=a.tok,
                params={"person_id": str(uuid.uuid4()), "list_id": w["list"]})  # fmt: skip
    await check("POST", f"{m}/identify", 400, 11018, headers=a.tok,
                params={"descriptor_id": str(uuid.uuid4()), "list_id": w["list"]})  # fmt: skip
    await check("POST", f"{m}/identify", 400, 22003, headers=a.tok,
                params={"person_id": w["astro"], "list_id": str(uuid.uuid4())})  # fmt: skip
    await check("POST", f"{m}/identify", 400, 11020, headers=a.tok,
                params={"person_id": w["astro"], "person_ids": str(uuid.uuid4())})  # fmt: skip
    await check("POST", f"{m}/identify", 400, 12012, headers=a.tok,
                params={"person_id": w["astro"], "list_id": w["list"], "limit": 9})  # fmt: skip
    await check("POST", f"{m}/match", 400, 11020, headers=a.tok,
                params={"person_id": w["astro"], "descriptor_ids": str(uuid.uuid4())})  # fmt: skip
    await check("POST", f"{m}/verify", 400, 12014, headers=a.tok,
                params={"person_id": w["astro"]})  # fmt: skip
    await check("POST", f"{m}/search", 400, 12016, data=MIRROR, headers=img)
    await check("POST", f"{m}/search", 400, 36012, data=MIRROR, headers=img,
                params={"list_id": w["list"], "extract_descriptor": 1})  # fmt: skip
    async with http.post(url + f"{m}/search", data=photo("01.jpg"), headers=img,
                         params={"list_id": w["list"]}) as r:  # fmt: skip
        body = await r.json()
        assert r.status == 400 and body["error_code"] == 11012, body
        assert len(body["detail"]["faces"]) >= 2
    # Handlers.
    h = "/4/handlers"
    await check("POST", f"{h}/extractor", 500, 36005, data=BLANK, headers=img)
    await check("POST", f"{h}/verify", 500, 36005, data=BLANK, headers=img,
                params={"person_id": w["astro"]})  # fmt: skip
    await a.call("PATCH", f"{h}/identify", 200, json={"list_id": w["list"]})
    await check("POST", f"{h}/identify", 500, 4003, data=BLANK, headers=img)
    await check("PATCH", f"{h}/verify", 400, 12022, headers=a.tok, json={"limit": 2})
    await check("PATCH", f"{h}/identify", 400, 12022, headers=a.tok, json={"limit": 6})
    await check("PATCH", f"{h}/identify", 400, 12022, headers=a.tok, json={})
    await check("PATCH", f"{h}/identify", 400, 22003, headers=a.tok,
                json={"list_id": str(uuid.uuid4())})  # fmt: skip
    await check("PATCH", f"{h}/extractor", 400, 12017, headers=a.tok, data=b"{}")
    one = base64.b64encode(b"\0\0\x80?" * 128).decode()
    ok = {"id": "c", "type": "raw_descriptor", "data": {"descriptor": one, "version": 200}}

    def raw(**data: Any) -> dict[str, Any]:
        bad = {"id": "r", "type": "raw_descriptor", "data": {"descriptor": "", "version": 200}}
        bad["data"].update(data)
        return {"references": [bad], "candidates": [ok]}

    r = f"{h}/verify/raw"
    await check("POST", r, 400, 12034, headers=a.tok,
                json=raw(descriptor=base64.b64encode(b"\0" * 200).decode()))  # fmt: skip
    await check("POST", r, 400, 12037, headers=a.tok, json=raw(version=37))
    await check("POST", r, 400, 18001, headers=a.tok, json=raw(descriptor="@@@"))
    await check("POST", r, 400, 12022, headers=a.tok, json={"references": [], "candidates": [ok]})
    await check("POST", r, 400, 12035, headers=a.tok,
                json={"references": [{"id": "x", "type": "xpk_file", "data": "AA=="}],
                      "candidates": [ok]})  # fmt: skip
    await check("POST", r, 400, 12017, headers={**a.tok, "Content-Type": "text/plain"}, data=b"x")
    # ws
    await check("GET", "/4/ws", 401, 12010)
    await check("GET", "/4/ws", 400, 12012, headers=a.tok, params={"event_type": "other"})


async def test_tokens_persons_lifecycle_and_legacy_ws(
    bp3_url: str, http: aiohttp.ClientSession, platform: Any
) -> None:
    a = await Client(http, bp3_url).register()
    # Tokens: patch, delete one, delete many; a deleted token stops working.
    t1 = (await a.call("POST", "/4/account/tokens", 201, json={"token_data": "a"},
                       headers=a.basic))["token"]  # fmt: skip
    t2 = (await a.call("POST", "/4/account/tokens", 201, json={"token_data": "b"},
                       headers=a.basic))["token"]  # fmt: skip
    await a.call("PATCH", f"/4/account/tokens/{t1}", 204, json={"token_data": "c"},
                 headers=a.basic)  # fmt: skip
    assert await a.call("GET", f"/4/account/tokens/{t1}", 200, headers=a.basic) == {
        "token_data": "c"
    }
    async with http.get(bp3_url + "/4/storage/persons", headers={"X-Auth-Token": t2}) as r:
        assert r.status == 200  # verified, and now cached by the gateway
    await a.call("DELETE", f"/4/account/tokens/{t2}", 204, headers=a.basic)
    async with http.get(bp3_url + "/4/storage/persons", headers={"X-Auth-Token": t2}) as r:
        await err(r, 401, 11002)
    await a.call("DELETE", "/4/account/tokens", 204, json={"tokens": [t1]}, headers=a.basic)
    assert (await a.call("GET", "/4/account/tokens", 200, headers=a.basic))["count"] == 1

    # The deprecated /api/subscribe with the token in the query sees extractions.
    async with aiohttp.ClientSession() as ws_http:
        async with ws_http.ws_connect(
            bp3_url + "/api/subscribe", params={"auth_token": a.token, "event_type": "extract"}
        ) as ws:
            made = await a.image("/4/handlers/extractor", ASTRONAUT, user_data="astro",
                                 external_id="ext-1")  # fmt: skip
            message = await asyncio.wait_for(ws.receive_json(), 30)
    assert message["source"] == "descriptors" and message["event_type"] == "extract"
    assert message["result"]["faces"][0]["id"] == made["face"]["id"]

    # Persons: filters, the linker, and what /6 sees as they change.
    person, desc = made["person_id"], made["face"]["id"]
    other = (await a.call("POST", "/4/storage/persons", 201, json={"user_data": "zeta"}))[
        "person_id"
    ]
    got = await a.call("GET", "/4/storage/persons", 200, params={"user_data": "str"})
    assert [p["id"] for p in got["persons"]] == [person] and got["count"] == 1
    got = await a.call("GET", "/4/storage/persons", 200, params={"external_id": "ext-1"})
    assert [p["id"] for p in got["persons"]] == [person]
    lst = (await a.call("POST", "/4/storage/lists", 201))["list_id"]
    link = {"action": "attach", "person_ids": [person, other], "list_id": lst}
    await a.call("PATCH", "/4/storage/linker", 204, json=link)
    assert (await a.call("GET", f"/4/storage/lists/{lst}", 200))["count"] == 2
    await a.call("PATCH", f"/4/storage/persons/{person}", 204, json={"user_data": "renamed"})

    async def face6() -> dict[str, Any]:
        async with http.get(f"{platform.url}/6/faces/{desc}", headers=a.basic) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    seen = await face6()
    assert (seen["user_data"], seen["external_id"], seen["lists"]) == ("renamed", "ext-1", [lst])
    await a.call("PATCH", f"/4/storage/persons/{person}/linked_descriptors", 204,
                 params={"descriptor_id": desc, "do": "detach"})  # fmt: skip
    seen = await face6()
    assert (seen["user_data"], seen["lists"]) == ("", [])
    info = await a.call("GET", f"/4/storage/descriptors/{desc}", 200)
    assert info["person_id"] is None
    await a.call("PATCH", f"/4/storage/persons/{person}/linked_descriptors", 204,
                 params={"descriptor_id": desc, "do": "attach"})  # fmt: skip
    assert (await face6())["lists"] == [lst]
    await a.call("DELETE", f"/4/storage/persons/{person}", 204)
    seen = await face6()
    assert (seen["user_data"], seen["lists"]) == ("", [])
    assert (await a.call("GET", f"/4/storage/lists/{lst}", 200))["count"] == 1

    # A face made through /6 is a descriptor through /4.
    vec = base64.b64encode((np.ones(128, "<f4") / np.sqrt(128)).astype("<f4").tobytes()).decode()
    async with http.post(
        platform.url + "/6/faces", headers=a.basic,
        json={"attribute": {"face_descriptors": [{"descriptor": vec, "version": 200}]}},
    ) as r:  # fmt: skip
        assert r.status == 201, await r.text()
        face_id = (await r.json())["face_id"]
    assert (await a.call("GET", f"/4/storage/descriptors/{face_id}", 200))["id"] == face_id


async def test_liveness(world: dict[str, Any]) -> None:
    a = world["a"]
    got = await a.image("/4/liveness", ASTRONAUT, 200, aggregate=1)
    (item,) = got["images"]
    assert item["filename"] == "raw_image" and item["status"] == 1
    assert item["error"]["error_code"] == 0
    assert item["liveness"]["prediction"] in (0, 1, 2)
    assert 0 <= item["liveness"]["estimations"]["probability"] <= 1
    assert (
        got["aggregate_estimations"]["liveness"]["estimations"] == item["liveness"]["estimations"]
    )
    form = aiohttp.FormData()
    form.add_field("image", ASTRONAUT, filename="a.jpg", content_type="image/jpeg")
    form.add_field("image", b"broken", filename="b.jpg", content_type="image/jpeg")
    got = await a.call("POST", "/4/liveness", 200, data=form)
    assert [i["status"] for i in got["images"]] == [1, 0]
    assert got["images"][1]["error"]["error_code"] == 3001
    async with a.req("POST", "/4/liveness", data=b"x", headers={"Content-Type": "text/plain"}) as r:
        await err(r, 400, 12017)
    async with a.req("POST", "/4/liveness", json={"urls": ["http://example.com/a.jpg"]}) as r:
        await err(r, 400, 11027)
    form = aiohttp.FormData()
    form.add_field("image", b"x", filename="a.txt", content_type="text/plain")
    async with a.req("POST", "/4/liveness", data=form) as r:
        await err(r, 400, 11029)
    form = aiohttp.FormData()
    for _ in range(2):
        form.add_field("image", ASTRONAUT, filename="same.jpg", content_type="image/jpeg")
    async with a.req("POST", "/4/liveness", data=form) as r:
        await err(r, 400, 11049)

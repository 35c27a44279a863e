"""/6/matcher/* through the REST API of a running platform (`luna up`): real descriptors from
/6/sdk on skimage's astronaut (and its mirror image), read-your-writes on create and delete,
account isolation, every filter/limit/threshold, documented errors, and a matcher killed
mid-way that comes back (supervisor restart, snapshot or full reload + stream replay) with
the same answers."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from lunatest import assert_error, bearer, create_account
from PIL import Image
from skimage import data

VERSION = 200


def b64(vec: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vec, "<f4").tobytes()).decode()


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return v / np.linalg.norm(v)


def jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


async def sdk_descriptor(http: Any, url: str, auth: dict[str, str], image: bytes) -> str:
    async with http.post(
        url + "/6/sdk",
        params={"detect_face": "1", "estimate_face_descriptor": "1"},
        data=image,
        headers={**auth, "Content-Type": "image/jpeg"},
    ) as r:
        assert r.status == 200, await r.text()
        (est,) = (await r.json())["images_estimations"][0]["estimations"]
    desc = est["face"]["attributes"]["descriptor"]
    assert desc["version"] == VERSION
    return desc["sdk_descriptor"]


@pytest.fixture(scope="module")
async def world(platform: Any, http: Any) -> dict[str, Any]:
    url = platform.url
    a_id, a = await create_account(http, url)
    b_id, b = await create_account(http, url)
    admin_id, admin = await create_account(http, url, account_type="advanced_user")
    pixels = data.astronaut()
    astro = await sdk_descriptor(http, url, a, jpeg(pixels))
    mirror = await sdk_descriptor(http, url, a, jpeg(np.ascontiguousarray(pixels[:, ::-1])))
    return {
        "url": url, "a": a, "b": b, "admin": admin, "a_id": a_id, "b_id": b_id,
        "admin_id": admin_id, "astro": astro, "mirror": mirror,
    }  # fmt: skip


async def create_face(
    http: Any, w: dict[str, Any], auth: dict[str, str], desc: str, **kw: Any
) -> str:
    body = {"attribute": {"face_descriptors": [{"descriptor": desc, "version": VERSION}]}, **kw}
    async with http.post(w["url"] + "/6/faces", json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["face_id"]


async def create_list(http: Any, w: dict[str, Any], auth: dict[str, str]) -> str:
    async with http.post(w["url"] + "/6/lists", json={}, headers=auth) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["list_id"]


async def match(
    http: Any, w: dict[str, Any], auth: dict[str, str], refs: list[Any], cands: list[Any],
    status: int = 200, query: str = "",
) -> Any:  # fmt: skip
    body = {"references": refs, "candidates": cands}
    async with http.post(f"{w['url']}/6/matcher/faces{query}", json=body, headers=auth) as r:
        assert r.status == status, await r.text()
        return await r.json()


def raw_ref(desc: str, rid: str = "q") -> dict[str, Any]:
    return {"type": "raw_descriptor", "id": rid, "descriptor": desc, "version": VERSION}


def found(result: Any, ref: int = 0, cand: int = 0) -> list[str]:
    return [item["face"]["face_id"] for item in result[ref]["matches"][cand]["result"]]


async def test_create_delete_visibility_and_response_shape(http, world) -> None:
    w = world
    lst = await create_list(http, w, w["a"])
    cost = []
    for i in range(5):
        fid = await create_face(
            http, w, w["a"], w["astro"], lists=[lst], user_data=f"astro {i}", external_id="nasa"
        )
        began = time.perf_counter()
        got = await match(http, w, w["a"], [raw_ref(w["mirror"])],
                          [{"filters": {"list_id": lst}, "limit": 1}])  # fmt: skip
        cost.append(time.perf_counter() - began)
        assert found(got) == [fid]
        async with http.delete(f"{w['url']}/6/faces/{fid}", headers=w["a"]) as r:
            assert r.status == 204, await r.text()
        got = await match(http, w, w["a"], [raw_ref(w["mirror"])], [{"filters": {"list_id": lst}}])
        assert found(got) == []
    assert sorted(cost)[2] < 1.0
    fid = await create_face(
        http, w, w["a"], w["astro"], lists=[lst], user_data="astro", external_id="nasa"
    )
    got = await match(http, w, w["a"], [{"type": "face", "id": fid}],
                      [{"filters": {"list_id": lst}, "limit": 5, "threshold": 0.2}])  # fmt: skip
    created = got[0]["matches"][0]["result"][0]["face"]["create_time"]
    assert created.endswith("Z")
    assert got == [
        {
            "reference": {"type": "face", "id": fid},
            "matches": [
                {
                    "filters": {"list_id": lst},
                    "candidates": {"filters": {"list_id": lst}, "limit": 5, "threshold": 0.2,
                                   "target": "faces"},
                    "result": [
                        {
                            "face": {
                                "face_id": fid, "account_id": w["a_id"], "event_id": None,
                                "user_data": "astro", "create_time": created,
                                "external_id": "nasa", "avatar": "", "lists": [lst],
                            },
                            "similarity": pytest.approx(1.0, abs=1e-5),
                        }
                    ],
                    "total_found": 1,
                }
            ],
        }
    ]  # fmt: skip
    # The mirror image of the same person: a genuine match under the calibrated similarity.
    got = await match(http, w, w["a"], [raw_ref(w["mirror"])], [{"filters": {"face_ids": [fid]}}])
    assert got[0]["matches"][0]["result"][0]["similarity"] > 0.5
    w["astro_face"], w["astro_list"] = fid, lst


async def test_accounts_cannot_see_or_match_each_other(http, world) -> None:
    w = world
    fa = await create_face(http, w, w["a"], w["astro"])
    fb = await create_face(http, w, w["b"], w["astro"])
    q = [raw_ref(w["mirror"])]
    mine = {"filters": {}, "limit": 30}
    assert fa not in found(await match(http, w, w["b"], q, [mine]))
    assert fb in found(await match(http, w, w["b"], q, [mine]))
    assert found(await match(http, w, w["b"], q, [{"filters": {"face_ids": [fa]}}])) == []
    resp_b = await match(http, w, w["b"], [{"type": "face", "id": fa}], [mine], status=404)
    assert resp_b["error_code"] == 22002
    # The account_id query does not widen a user's view ...
    got = await match(http, w, w["b"], q, [mine], query=f"?account_id={w['a_id']}")
    assert fa not in found(got)
    # ... but an advanced user sees every account, or the one the query names.
    both = found(await match(http, w, w["admin"], q, [{"filters": {"face_ids": [fa, fb]}}]))
    assert set(both) == {fa, fb}
    only_a = await match(http, w, w["admin"], q, [{"filters": {"face_ids": [fa, fb]}}],
                         query=f"?account_id={w['a_id']}")  # fmt: skip
    assert found(only_a) == [fa]


async def test_filters_limit_threshold_and_reference_kinds(http, world) -> None:
    w = world
    a = w["a"]
    l1, l2 = await create_list(http, w, a), await create_list(http, w, a)
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    astro = await create_face(http, w, a, w["astro"], lists=[l1], user_data="Astro Naut",
                              external_id="ext-astro")  # fmt: skip
    strangers = [
        await create_face(http, w, a, b64(unit(i)), lists=[l1 if i % 2 else l2],
                          user_data=f"stranger {i}", external_id=f"ext-{i}")
        for i in range(6)
    ]  # fmt: skip
    q = [raw_ref(w["mirror"])]
    got = await match(http, w, a, q, [{"filters": {"list_id": l1}, "limit": 30}])
    assert found(got)[0] == astro and set(found(got)) == {astro, *strangers[1::2]}
    sims = [x["similarity"] for x in got[0]["matches"][0]["result"]]
    assert sims == sorted(sims, reverse=True) and sims[0] > 0.5 > sims[1]
    assert got[0]["matches"][0]["total_found"] == 4
    # Default limit 3; explicit limit; threshold.
    assert len(found(await match(http, w, a, q, [{"filters": {"list_id": l1}}]))) == 3
    assert len(found(await match(http, w, a, q, [{"filters": {"list_id": l1}, "limit": 2}]))) == 2
    got = await match(http, w, a, q, [{"filters": {"list_id": l1}, "threshold": 0.5, "limit": 30}])
    assert found(got) == [astro]
    # Filters the index does not hold.
    for filters, want in (
        ({"user_data": "naut"}, [astro]),
        ({"external_ids": ["ext-2", "ext-3"]}, [strangers[2], strangers[3]]),
        ({"list_id": l2, "external_ids": ["ext-2", "ext-3"]}, [strangers[2]]),
        ({"list_id": l1, "create_time__gte": since}, [astro, *strangers[1::2]]),
        ({"list_id": l1, "create_time__lt": since}, []),
        ({"face_ids": [astro, strangers[0]], "list_id": l1}, [astro]),
    ):
        got = await match(http, w, a, q, [{"filters": filters, "limit": 30}])
        assert set(found(got)) == set(want), filters
    # Two references x two candidate sets, in request order.
    got = await match(http, w, a, [raw_ref(w["mirror"], "m"), raw_ref(b64(unit(2)), "s2")],
                      [{"filters": {"list_id": l1}, "limit": 1},
                       {"filters": {"list_id": l2}, "limit": 1}])  # fmt: skip
    assert [r["reference"]["id"] for r in got] == ["m", "s2"]
    assert found(got, 0, 0) == [astro] and found(got, 1, 1) == [strangers[2]]
    # Reference kinds: face, external id, attribute, sdk_descriptor (what /6/sdk returns).
    attr_body = {"face_descriptors": [{"descriptor": w["mirror"], "version": VERSION}]}
    async with http.post(w["url"] + "/6/attributes?ttl=60", json=attr_body, headers=a) as r:
        assert r.status == 201, await r.text()
        attribute_id = (await r.json())["attribute_id"]
    refs = [
        {"type": "face", "id": astro},
        {"type": "face_external_id", "id": "ext-astro"},
        {"type": "attribute", "id": attribute_id},
        {"type": "sdk_descriptor", "id": "sdk", "descriptor": w["mirror"]},
    ]
    got = await match(http, w, a, refs, [{"filters": {"list_id": l1}, "limit": 1}])
    assert [r["reference"]["type"] for r in got] == [r["type"] for r in refs]
    assert got[1]["reference"] == {"type": "face_external_id", "id": "ext-astro", "face_id": astro}
    assert all(found(got, i) == [astro] for i in range(4))
    # No candidates at all is allowed.
    assert await match(http, w, a, q, []) == [{"reference": {"type": "raw_descriptor", "id": "q"},
                                                "matches": []}]  # fmt: skip


async def test_raw_matching_and_bodies(http, world) -> None:
    w = world
    body = {
        "references": [{"type": "raw_descriptor", "id": "r1", "descriptor": w["astro"]}],
        "candidates": [
            {"type": "raw_descriptor", "id": "c1", "descriptor": b64(unit(1))},
            {"type": "sdk_descriptor", "id": "c2", "descriptor": w["mirror"]},
        ],
    }
    async with http.post(w["url"] + "/6/matcher/raw", json=body, headers=w["a"]) as r:
        assert r.status == 200, await r.text()
        got = await r.json()
    assert [m["candidate_id"] for m in got["matches"][0]["matches"]] == ["c2", "c1"]
    assert got["matches"][0]["reference_id"] == "r1"
    assert got["matches"][0]["matches"][0]["similarity"] > 0.5
    bodies = {"references": [{"type": "event", "id": str(uuid.uuid4())}],
              "candidates": [{"filters": {}}]}  # fmt: skip
    async with http.post(w["url"] + "/6/matcher/bodies", json=bodies, headers=w["a"]) as r:
        await assert_error(r, 404, 23007, "Human descriptor")


async def test_bad_input_gets_documented_errors(http, world) -> None:
    w = world
    a, url = w["a"], w["url"]
    good = raw_ref(w["astro"])
    c = [{"filters": {}}]
    nan = b64(np.full(128, np.nan, np.float32))
    cases: list[tuple[str, Any, int, int, str | None]] = [
        ("faces", {"references": [good] * 31, "candidates": c}, 400, 12022, "at most 30 items"),
        ("faces", {"references": [good], "candidates": c * 31}, 400, 12022, "at most 30 items"),
        ("faces", {"references": [], "candidates": c}, 400, 12022, "at least 1 items"),
        ("faces", {"references": [good]}, 400, 12022, "field required"),
        ("faces", {"references": [{**good, "descriptor": "@@not base64"}], "candidates": c},
         400, 12022, "base64"),
        ("faces", {"references": [{**good, "descriptor": b64(unit(1)[:100])}], "candidates": c},
         400, 12034, "incorrect length"),
        ("faces", {"references": [{**good, "descriptor": nan}], "candidates": c}, 400, 26302, None),
        ("faces", {"references": [{**good, "version": 57}], "candidates": c}, 400, 31001, "57"),
        ("faces", {"references": [{"type": "face", "id": str(uuid.uuid4())}], "candidates": c},
         404, 22002, None),
        ("faces", {"references": [{"type": "attribute", "id": str(uuid.uuid4())}],
                   "candidates": c}, 404, 22011, None),
        ("faces", {"references": [{"type": "face_external_id", "id": "nobody-has-it"}],
                   "candidates": c}, 404, 11041, None),
        ("faces", {"references": [{"type": "xpk_file", "descriptor": "AAAA"}], "candidates": c},
         400, 12035, None),
        ("faces", {"references": [good], "candidates": [{"filters": {"face_ids": ["x"]}}]},
         400, 12022, "valid uuid"),
        ("faces", {"references": [good], "candidates": [{"limit": 0}]}, 400, 12022, "limit"),
        ("faces", {"references": [good], "candidates": [{"threshold": 1.5}]}, 400, 12022,
         "threshold"),
        ("faces", {"references": [good], "candidates": [{"filters": {"nope": 1}}]}, 400, 12022,
         "extra fields"),
        ("faces", {"references": [good], "candidates": [{"target": "attributes"}]}, 501, 12029,
         None),
        ("faces", {"references": [good],
                   "candidates": [{"target": "events", "filters": {"list_id": "x"}}]},
         400, 12022, "extra fields"),
        ("faces", {"references": [good],
                   "candidates": [{"target": "events", "filters": {"handler_ids": ["x"]}}]},
         400, 12022, "handler_ids"),
        ("faces", {"references": [{"type": "event", "id": str(uuid.uuid4())}], "candidates": c},
         404, 23001, None),
        ("faces", {"references": [{"type": "event_external_id", "id": "none"}], "candidates": c},
         404, 11057, None),
        ("raw", {"references": [good], "candidates": []}, 400, 12022, "at least 1 items"),
        ("raw", {"references": [good], "candidates": [{**good, "version": 57}]}, 400, 31001, None),
        ("raw", {"references": [good], "candidates": [{**good, "descriptor": "%%"}]}, 400, 12022,
         "base64"),
    ]  # fmt: skip
    for path, body, status, code, part in cases:
        async with http.post(f"{url}/6/matcher/{path}", json=body, headers=a) as r:
            await assert_error(r, status, code, part)
    async with http.post(
        f"{url}/6/matcher/faces", data=b"{", headers={**a, "Content-Type": "application/json"}
    ) as r:
        await assert_error(r, 400, 12002)
    # Credentials: none, and a token without the matching permission.
    async with http.post(
        f"{url}/6/matcher/faces", json={"references": [good], "candidates": c}
    ) as r:
        await assert_error(r, 401, 12010)
    token_body = {"permissions": {"face": ["view"]}, "expiration_time": None}
    async with http.post(url + "/6/tokens", headers=a, json=token_body) as r:
        assert r.status == 201, await r.text()
        token = (await r.json())["token"]
    async with http.post(f"{url}/6/matcher/faces", headers=bearer(token),
                         json={"references": [good], "candidates": c}) as r:  # fmt: skip
        await assert_error(r, 403, 11059, "matching")


async def _until_answers(coro_fn: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await coro_fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def test_killed_matcher_comes_back_with_the_same_answers(platform, http, world) -> None:
    w = world
    _, a = await create_account(http, w["url"])  # its own account: no ties with other tests
    lst = await create_list(http, w, a)
    faces = [await create_face(http, w, a, b64(unit(100 + i)), lists=[lst]) for i in range(8)]
    astro = await create_face(http, w, a, w["astro"], lists=[lst])
    refs = [raw_ref(w["mirror"], "m"), *(raw_ref(b64(unit(100 + i)), f"u{i}") for i in range(3))]
    cands = [{"filters": {"list_id": lst}, "limit": 4}, {"filters": {}, "limit": 2}]
    before = await match(http, w, a, refs, cands)
    assert found(before)[0] == astro

    def pid() -> int:
        runtime = json.loads((platform.data_dir / "runtime.json").read_text())
        return int(runtime["services"]["matcher"]["pid"])

    async def restarted(old: int) -> Any:
        async def check() -> Any:
            assert pid() != old
            return await match(http, w, a, refs, cands)

        return await _until_answers(check)

    # Graceful stop: the matcher writes a snapshot and is restarted from it.
    old = pid()
    os.kill(old, signal.SIGTERM)
    assert await restarted(old) == before
    assert (platform.data_dir / "matcher" / "CURRENT").exists()
    # Killed outright mid-way, with a face deleted and another created while it is down:
    # the restarted matcher replays them from the stream.
    old = pid()
    os.kill(old, signal.SIGKILL)
    async with http.delete(f"{w['url']}/6/faces/{faces[0]}", headers=a) as r:
        assert r.status == 204
    late = await create_face(http, w, a, b64(unit(100)), lists=[lst])
    after = await restarted(old)
    assert faces[0] not in json.dumps(after)
    # Same answers, with the late face (same descriptor) in the deleted one's place.
    for r in range(len(refs)):
        for c in range(len(cands)):
            want = [late if f == faces[0] else f for f in found(before, r, c)]
            assert found(after, r, c) == want, (r, c)
    assert found(after, 1, 0)[0] == late

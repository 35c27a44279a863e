"""The documented ingestion loop through REST under concurrency (POST /6/attributes, then
POST /6/faces with that attribute in a list), as bench/ingest drives it: creates that arrive
together share transactions in the faces service, and still every face is stored as asked and
is matchable the moment its create answered (read-your-writes), with no one's refusal leaking
into another's answer."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import numpy as np
from lunatest import assert_error, create_account

VERSION = 200


def unit(seed: int) -> np.ndarray:
    vec = np.random.default_rng(seed).standard_normal(128).astype("<f4")
    return vec / np.linalg.norm(vec)


def b64(vec: np.ndarray) -> str:
    return base64.b64encode(vec.astype("<f4").tobytes()).decode()


async def test_concurrent_rest_ingestion_is_stored_and_matchable_at_once(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    async with http.post(url + "/6/lists", json={}, headers=auth) as r:
        list_id = (await r.json())["list_id"]

    async def ingest(i: int) -> str:
        body = {"face_descriptors": [{"descriptor": b64(unit(i)), "version": VERSION}]}
        async with http.post(url + "/6/attributes", json=body, headers=auth) as r:
            assert r.status == 201, await r.text()
            attribute_id = (await r.json())["attribute_id"]
        face = {"attribute": {"attribute_id": attribute_id}, "lists": [list_id],
                "user_data": f"person {i}"}  # fmt: skip
        async with http.post(url + "/6/faces", json=face, headers=auth) as r:
            assert r.status == 201, await r.text()
            face_id = (await r.json())["face_id"]
        # Matchable at once: no waiting, no retry.
        probe = {"type": "raw_descriptor", "id": "q", "descriptor": b64(unit(i)),
                 "version": VERSION}  # fmt: skip
        cands = [{"filters": {"list_id": list_id}, "limit": 1}]
        async with http.post(
            url + "/6/matcher/faces", json={"references": [probe], "candidates": cands},
            headers=auth,
        ) as r:  # fmt: skip
            assert r.status == 200, await r.text()
            (best,) = (await r.json())[0]["matches"][0]["result"]
        assert best["face"]["face_id"] == face_id and best["face"]["user_data"] == f"person {i}"
        assert best["face"]["lists"] == [list_id] and best["similarity"] > 0.999
        return face_id

    async def refused(kind: str) -> None:
        ghost = str(uuid.uuid4())
        face: dict[str, Any] = {"lists": [list_id]}
        if kind == "attribute":
            face["attribute"] = {"attribute_id": ghost}
        else:
            face["lists"] = [list_id, ghost]
        async with http.post(url + "/6/faces", json=face, headers=auth) as r:
            await assert_error(r, 404, 22011 if kind == "attribute" else 22005, ghost)

    results = await asyncio.gather(
        *(ingest(i) for i in range(24)), refused("attribute"), refused("list")
    )
    face_ids = results[:24]
    assert len(set(face_ids)) == 24
    async with http.get(f"{url}/6/faces/count?list_id={list_id}", headers=auth) as r:
        assert (await r.json())["faces_count"] == 24

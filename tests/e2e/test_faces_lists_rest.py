"""Faces, lists and temporary attributes through the REST API of a running platform: the main
flows, bad input of every kind, and one account never reaching another's data."""

from __future__ import annotations

import base64
import uuid

import numpy as np
from lunatest import UUID_RE, assert_error, bearer, create_account


def b64_descriptor(seed: int) -> str:
    vec = np.random.default_rng(seed).standard_normal(128).astype("<f4")
    return base64.b64encode(vec.tobytes()).decode()


async def test_face_list_attribute_flow(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    async with http.post(url + "/6/lists", json={"user_data": "staff"}, headers=auth) as r:
        assert r.status == 201
        created = await r.json()
    list_id = created["list_id"]
    assert created["url"] == f"/6/lists/{list_id}" and UUID_RE.match(list_id)
    attr_body = {
        "face_descriptors": [{"descriptor": b64_descriptor(1), "version": 200}],
        "basic_attributes": {"age": 31, "gender": 1, "ethnicity": 3},
        "basic_attributes_samples": [str(uuid.uuid4())],
    }
    async with http.post(url + "/6/attributes?ttl=60", json=attr_body, headers=auth) as r:
        assert r.status == 201, await r.text()
        attribute_id = (await r.json())["attribute_id"]
    async with http.get(f"{url}/6/attributes/{attribute_id}", headers=auth) as r:
        attribute = await r.json()
    assert attribute["basic_attributes"] == {"age": 31, "gender": 1, "ethnicity": 3}
    stored = np.frombuffer(base64.b64decode(attribute["face_descriptor"]), "<f4")
    assert abs(float(np.linalg.norm(stored)) - 1.0) < 1e-5
    face_body = {
        "attribute": {"attribute_id": attribute_id},
        "external_id": "person-1",
        "user_data": "Alice",
        "lists": [list_id],
    }
    async with http.post(url + "/6/faces", json=face_body, headers=auth) as r:
        assert r.status == 201, await r.text()
        face_id = (await r.json())["face_id"]
    async with http.get(f"{url}/6/faces/{face_id}", headers=auth) as r:
        face = await r.json()
    assert face["lists"] == [list_id] and face["external_id"] == "person-1"
    assert face["event_id"] is None and face["create_time"].endswith("Z")
    async with http.get(f"{url}/6/faces/{face_id}?targets=face_id,lists", headers=auth) as r:
        assert await r.json() == {"face_id": face_id, "lists": [list_id]}
    async with http.head(f"{url}/6/faces/{face_id}", headers=auth) as r:
        assert r.status == 200
    async with http.get(f"{url}/6/faces/{face_id}/attributes", headers=auth) as r:
        attrs = (await r.json())["attributes"]
    assert attrs["face_descriptor"] == attribute["face_descriptor"]
    async with http.get(f"{url}/6/faces/{face_id}/attributes/samples", headers=auth) as r:
        assert (await r.json())["samples"] == attr_body["basic_attributes_samples"]
    async with http.patch(
        f"{url}/6/faces/{face_id}", json={"user_data": "Alice B"}, headers=auth
    ) as r:
        assert r.status == 204
    second = []
    for i in range(3):
        async with http.post(url + "/6/faces", json={"user_data": f"n{i}"}, headers=auth) as r:
            second.append((await r.json())["face_id"])
    link = {"action": "attach", "face_ids": second}
    async with http.patch(f"{url}/6/lists/{list_id}/faces", json=link, headers=auth) as r:
        assert r.status == 204
    async with http.get(f"{url}/6/faces/count?list_id={list_id}", headers=auth) as r:
        assert await r.json() == {"faces_count": 4}
    async with http.get(f"{url}/6/faces?user_data=alice&page_size=5", headers=auth) as r:
        assert [f["face_id"] for f in (await r.json())["faces"]] == [face_id]
    async with http.get(f"{url}/6/faces?page=2&page_size=3", headers=auth) as r:
        assert len((await r.json())["faces"]) == 1
    async with http.get(url + "/6/faces/attributes/count", headers=auth) as r:
        assert await r.json() == {"faces_count": 1}
    async with http.get(f"{url}/6/lists?user_data__eq=staff", headers=auth) as r:
        assert [x["list_id"] for x in (await r.json())["lists"]] == [list_id]
    async with http.get(url + "/6/lists/count", headers=auth) as r:
        assert await r.json() == {"lists_count": 1}
    unlink = {"action": "detach", "face_ids": second[:1]}
    async with http.patch(f"{url}/6/lists/{list_id}/faces", json=unlink, headers=auth) as r:
        assert r.status == 204
    async with http.delete(f"{url}/6/lists/{list_id}?with_faces=1", headers=auth) as r:
        assert r.status == 204
    async with http.get(url + "/6/faces/count", headers=auth) as r:
        assert await r.json() == {"faces_count": 1}  # only the detached face is left
    async with http.delete(url + "/6/faces", json={"face_ids": second[:1]}, headers=auth) as r:
        assert r.status == 204
    async with http.delete(f"{url}/6/attributes/{attribute_id}", headers=auth) as r:
        assert r.status == 204
    async with http.get(f"{url}/6/attributes/{attribute_id}", headers=auth) as r:
        await assert_error(r, 404, 22011)


async def test_bad_input_gets_documented_errors(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    cases = [
        ("POST", "/6/faces", {"unknown": 1}, 400, 12022, "extra fields not permitted"),
        ("POST", "/6/faces", {"user_data": 5}, 400, 12022, "str type expected"),
        ("POST", "/6/faces", {"user_data": "x" * 129}, 400, 12022, "at most 128"),
        ("POST", "/6/faces", {"external_id": "x" * 37}, 400, 12022, "at most 36"),
        ("POST", "/6/faces", {"lists": []}, 400, 12022, "lists"),
        ("POST", "/6/faces", {"lists": ["not-a-uuid"]}, 400, 12022, "valid uuid"),
        ("POST", "/6/faces", {"lists": [str(uuid.uuid4())]}, 404, 22005, None),
        ("POST", "/6/lists", {"user_data": "x" * 129}, 400, 12022, "at most 128"),
        ("GET", "/6/faces/not-a-uuid", None, 400, 12012, "face_id"),
        ("GET", f"/6/faces/{uuid.uuid4()}", None, 404, 22002, None),
        ("GET", f"/6/lists/{uuid.uuid4()}", None, 404, 22003, None),
        ("GET", "/6/faces?page_size=1001", None, 400, 12012, "page_size"),
        ("GET", "/6/faces?face_ids=abc", None, 400, 12012, "face_ids"),
        ("GET", "/6/faces?targets=nope", None, 400, 12012, "targets"),
        ("DELETE", "/6/faces", {"face_ids": [str(uuid.uuid4())]}, 404, 22004, None),
        ("PATCH", f"/6/lists/{uuid.uuid4()}/faces", {"action": "move", "face_ids": []}, 400,
         12022, None),
        ("POST", "/6/attributes?ttl=0", {"basic_attributes": {"age": 1, "gender": 0,
         "ethnicity": 1}}, 400, 12012, "ttl"),
        ("POST", "/6/attributes", {"face_descriptors": ["@@@"]}, 400, 18001, None),
        ("POST", "/6/attributes", {"face_descriptors": [base64.b64encode(b"abc").decode()]},
         400, 12034, None),
    ]  # fmt: skip
    for method, path, body, status, code, detail in cases:
        async with http.request(method, url + path, json=body, headers=auth) as r:
            await assert_error(r, status, code, detail)
    async with http.get(url + "/6/faces/count", headers=auth) as r:
        assert await r.json() == {"faces_count": 0}  # nothing half-written


async def test_accounts_never_reach_each_others_data(platform, http) -> None:
    url = platform.url
    _, alice = await create_account(http, url)
    _, bob = await create_account(http, url)
    async with http.post(url + "/6/lists", headers=alice) as r:
        alice_list = (await r.json())["list_id"]
    async with http.post(url + "/6/faces", json={"lists": [alice_list]}, headers=alice) as r:
        alice_face = (await r.json())["face_id"]
    async with http.post(url + "/6/lists", headers=bob) as r:
        bob_list = (await r.json())["list_id"]
    attach = {"action": "attach", "face_ids": [alice_face]}
    for method, path, body, code in (
        ("GET", f"/6/faces/{alice_face}", None, 22002),
        ("PATCH", f"/6/faces/{alice_face}", {"user_data": "x"}, 22002),
        ("DELETE", f"/6/faces/{alice_face}", None, 22002),
        ("GET", f"/6/lists/{alice_list}", None, 22003),
        ("DELETE", f"/6/lists/{alice_list}", None, 22003),
        ("PATCH", f"/6/lists/{bob_list}/faces", attach, 22004),
        ("PATCH", f"/6/lists/{alice_list}/faces", attach, 22003),
    ):
        async with http.request(method, url + path, json=body, headers=bob) as r:
            await assert_error(r, 404, code)
    async with http.get(url + "/6/faces", headers=bob) as r:
        assert (await r.json())["faces"] == []
    async with http.get(f"{url}/6/faces/{alice_face}", headers=alice) as r:
        assert (await r.json())["lists"] == [alice_list]


async def test_token_permissions_apply(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    body = {"permissions": {"face": ["view"]}}
    async with http.post(url + "/6/tokens", json=body, headers=auth) as r:
        token = (await r.json())["token"]
    async with http.get(url + "/6/faces", headers=bearer(token)) as r:
        assert r.status == 200
    async with http.post(url + "/6/faces", headers=bearer(token)) as r:
        await assert_error(r, 403, 11059)
    async with http.post(url + "/6/lists", headers=bearer(token)) as r:
        await assert_error(r, 403, 11059)

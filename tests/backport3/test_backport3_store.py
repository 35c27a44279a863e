"""The backport3 service's core: LUNA 3 accounts and tokens, persons and their links, list
kinds and handler policies, on a real PostgreSQL; plus the policy rules and ws filters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.backport3 import policies
from services.backport3.store import DESCRIPTORS, PERSONS, Store
from services.common import errors


def new() -> str:
    return str(uuid.uuid4())


async def raises(code: int, coro: Any) -> errors.LunaError:
    with pytest.raises(errors.LunaError) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value


async def test_accounts_and_tokens(store: Store) -> None:
    acc = new()
    account, token = await store.create_account(acc, "a@example.com", "Org")
    assert (account["email"], account["organization_name"], account["suspended"]) == (
        "a@example.com", "Org", False,
    )  # fmt: skip
    await raises(11011, store.create_account(new(), "a@example.com", "Other"))
    second = await store.create_token(acc, "south camera")
    rows, count = await store.list_tokens(acc, 1, 10)
    assert count == 2 and {r["token_id"] for r in rows} == {token["token_id"], second["token_id"]}
    found, owner = await store.verify_token(second["token_id"])
    assert found["account_id"] == acc and found["token_data"] == "south camera"
    assert owner["email"] == "a@example.com"
    await raises(12001, store.verify_token("not-a-uuid"))
    await raises(11002, store.verify_token(new()))
    assert (await store.update_token(acc, second["token_id"], "north"))["token_data"] == "north"
    # Deleting several is all or nothing.
    await raises(11022, store.delete_tokens(acc, [second["token_id"], new()]))
    assert (await store.list_tokens(acc, 1, 10))[1] == 2
    await store.delete_tokens(acc, [second["token_id"]])
    await raises(11022, store.get_token(acc, second["token_id"]))
    # Another account sees none of them.
    other, _ = await store.create_account(new(), "b@example.com", "B")
    await raises(11022, store.get_token(other["account_id"], token["token_id"]))
    await raises(12012, store.list_tokens(acc, 1, 1001))


async def test_persons_descriptors_and_lists(store: Store) -> None:
    acc, other = new(), new()
    p = await store.create_person(acc, "astronaut", "nasa-1")
    q = await store.create_person(acc, "man", "")
    d = new()
    got = await store.link_descriptor(acc, p["person_id"], d, True)
    assert got["descriptor_ids"] == [d]
    await raises(22008, store.link_descriptor(acc, p["person_id"], d, True))
    await raises(22008, store.link_descriptor(acc, q["person_id"], d, True))
    await raises(36004, store.link_descriptor(acc, q["person_id"], d, False))
    await raises(22007, store.link_descriptor(other, p["person_id"], new(), True))
    assert await store.persons_of_descriptors(acc, [d, new()]) == {d: p["person_id"]}
    assert await store.persons_of_descriptors(other, [d]) == {}

    plist, dlist = new(), new()
    await store.create_list(acc, plist, PERSONS, "staff")
    await store.create_list(acc, dlist, DESCRIPTORS, "")
    await raises(36001, store.link_persons_to_list(acc, dlist, [p["person_id"]], True))
    await raises(22007, store.link_persons_to_list(acc, plist, [p["person_id"], new()], True))
    assert (await store.get_person(acc, p["person_id"]))["list_ids"] == []  # nothing linked
    linked = await store.link_persons_to_list(acc, plist, [p["person_id"], q["person_id"]], True)
    assert [x["descriptor_ids"] for x in linked] == [[d], []]
    rows, count = await store.list_persons(
        acc, user_data="astro", external_id=None, list_id=plist, person_ids=[], page=1,
        page_size=10,
    )  # fmt: skip
    assert count == 1 and rows[0]["person_id"] == p["person_id"]
    rows, count = await store.list_persons(
        acc, user_data=None, external_id="nasa", list_id="", person_ids=[], page=1, page_size=10
    )
    assert count == 0  # external_id is matched exactly
    await raises(22003, store.get_lists(other, [plist]))
    lists, n = await store.list_lists(acc, PERSONS, 1, 10)
    assert n == 1 and lists[0]["list_data"] == "staff"

    updated = await store.update_person(acc, p["person_id"], None, "nasa-2")
    assert (updated["user_data"], updated["external_id"]) == ("astronaut", "nasa-2")
    await raises(22003, store.delete_lists(acc, [plist, new()]))
    await store.delete_lists(acc, [plist])
    assert (await store.get_person(acc, p["person_id"]))["list_ids"] == []
    gone = await store.delete_person(acc, p["person_id"])
    assert gone["descriptor_ids"] == [d]
    assert await store.persons_of_descriptors(acc, [d]) == {}
    await raises(22007, store.get_person(acc, p["person_id"]))


async def test_handlers_are_per_account_and_versioned(store: Store) -> None:
    acc, other = new(), new()
    h = await store.get_handler(acc, policies.IDENTIFY)
    assert h["version"] == 1 and h["policies"] == policies.defaults(policies.IDENTIFY)
    lst = new()
    await store.create_list(acc, lst, PERSONS, "")
    h2 = await store.update_handler(acc, policies.IDENTIFY, {"list_id": lst, "limit": 2.0})
    assert h2["version"] == 2 and h2["handler_id"] == h["handler_id"]
    assert h2["policies"]["limit"] == 2 and h2["policies"]["list_id"] == lst
    await raises(22003, store.update_handler(other, policies.IDENTIFY, {"list_id": lst}))
    assert (await store.get_handler(other, policies.IDENTIFY))["version"] == 1
    dl = new()
    await store.create_list(acc, dl, DESCRIPTORS, "")
    await raises(36001, store.update_handler(acc, policies.EXTRACTOR, {"list_id": dl}))


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        (policies.VERIFY, {}),
        (policies.VERIFY, {"limit": 2}),  # identify only
        (policies.IDENTIFY, {"limit": 6}),
        (policies.IDENTIFY, {"estimate_quality": 2}),
        (policies.IDENTIFY, {"estimate_quality": True}),
        (policies.EXTRACTOR, {"yaw_threshold": 181}),
        (policies.EXTRACTOR, {"score_threshold": 1.5}),
        (policies.EXTRACTOR, {"list_id": "x"}),
        (policies.VERIFY, {"verify_threshold": "0.5"}),
        (policies.VERIFY, []),
    ],
)
def test_bad_policies_are_refused(kind: int, changes: Any) -> None:
    with pytest.raises(errors.LunaError) as info:
        policies.validate(kind, changes)
    assert info.value.code == 12022


def test_good_policies_are_normalised() -> None:
    got = policies.validate(policies.VERIFY, {"verify_threshold": 1, "pitch_threshold": 35.0})
    assert got == {"verify_threshold": 1.0, "pitch_threshold": 35}
    assert set(policies.defaults(policies.VERIFY)) >= {"verify_threshold", "score_threshold"}

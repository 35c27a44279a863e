"""The /4/ws filters LUNA 3 documents, on the LUNA 3 records of Backport 3 events (see
`services/gateway/backport3/events.py`: tokens are named by their hash)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from services.common import errors
from services.gateway.backport3.events import token_hash
from services.gateway.backport3.ws import Filters

TOKEN = "11c59254-e83f-41a3-b0eb-28fae998f271"
LIST = "2f9a3f3c-6f8e-4c4e-8e63-0d0f1c2b3a4d"


def filters(query: str) -> Filters:
    return Filters(make_mocked_request("GET", "/4/ws?" + query))


def extract(age: int, gender: int, auth: Any = "basic") -> dict[str, Any]:
    face = {"id": "x", "attributes": {"age": age, "gender": gender}}
    return {"event_type": "extract", "source": "descriptors", "authorization": auth,
            "result": {"faces": [face]}}  # fmt: skip


def match(similarity: float, list_id: str = LIST) -> dict[str, Any]:
    return {
        "event_type": "match", "source": "identify",
        "authorization": {"token_sha256": token_hash(TOKEN), "token_data": ""},
        "result": {"candidates": [{"similarity": similarity}]},
        "candidate": {"list_id": list_id, "list_data": "", "list_type": 1},
    }  # fmt: skip


def test_event_type_observe_and_attributes() -> None:
    assert filters("event_type=match").passes(match(0.9))
    assert not filters("event_type=match").passes(extract(30, 1))
    assert filters(f"observe={TOKEN}").passes(match(0.9))
    assert not filters(f"observe={TOKEN}").passes(extract(30, 1))
    assert filters(f"observe=basic,{TOKEN}").passes(extract(30, 1))
    assert filters("gender=male&age__gt=20&age__lt=40").passes(extract(30, 1))
    assert not filters("gender=female").passes(extract(30, 1))
    assert not filters("age__lt=25").passes(extract(30, 1))


def test_similarity_and_list() -> None:
    assert filters("similarity__gt=0.5").passes(match(0.9))
    assert not filters("similarity__gt=0.95").passes(match(0.9))
    assert filters(f"list={LIST}").passes(match(0.9))
    assert not filters(f"list={LIST}").passes(match(0.9, list_id=TOKEN))


@pytest.mark.parametrize(
    "query", ["event_type=all", "gender=x", "age__gt=old", "list=nope", "observe=someone"]
)
def test_bad_filters_are_refused(query: str) -> None:
    with pytest.raises(errors.LunaError) as info:
        filters(query)
    assert info.value.code == 12012


def test_token_cache_forgets_what_auth_changed_names() -> None:
    from services.gateway.backport3.core import Caller, TokenCache

    cache = TokenCache(60)
    a1, a2, b = Caller("acc-a", "t1"), Caller("acc-a", "t2"), Caller("acc-b", "t3")
    for c in (a1, a2, b):
        cache.put(c.token_id, c)
    cache.forget(b'{"account_id": "acc-a", "token_id": "t1"}')
    assert cache.get("t1") is None and cache.get("t2") is a2
    cache.forget(b'{"account_id": "acc-a", "token_id": ""}')  # a whole account
    assert cache.get("t2") is None and cache.get("t3") is b
    cache.forget(b"not json")
    assert cache.get("t3") is None
    assert TokenCache(-1).get("x") is None

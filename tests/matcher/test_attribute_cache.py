"""The matcher's attribute cache without a network: visibility, expiry margin, deletes that
come before their create notice, account deletion, reads raced by a delete, and its bound."""

from __future__ import annotations

import numpy as np

from services.matcher.attribute_cache import AttributeCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return v / np.linalg.norm(v)


def test_visible_to_its_account_until_the_margin_before_expiry() -> None:
    clock = Clock()
    cache = AttributeCache(margin_s=2.0, clock=clock)
    cache.created("x", "a", 1060.0, vec(1))
    assert np.array_equal(cache.get("x", "a"), vec(1))
    assert cache.get("x", None) is not None  # see_all without a filter
    assert cache.get("x", "b") is None
    clock.now = 1057.9
    assert cache.get("x", "a") is not None
    clock.now = 1058.0  # within the margin: the faces service decides
    assert cache.get("x", "a") is None


def test_a_notice_after_its_delete_is_refused() -> None:
    cache = AttributeCache(clock=Clock())
    cache.deleted("x", "a")  # the delete overtook the create notice (another replica)
    cache.created("x", "a", 2000.0, vec(1))
    assert cache.get("x", "a") is None
    cache.created("y", "a", 2000.0, vec(2))
    cache.deleted("y", "a")
    assert cache.get("y", "a") is None
    cache.created("y", "a", 2000.0, vec(2))  # redelivered notice
    assert cache.get("y", "a") is None


def test_an_account_delete_drops_its_attributes_and_later_notices() -> None:
    cache = AttributeCache(clock=Clock())
    cache.created("x", "a", 2000.0, vec(1))
    cache.created("y", "b", 2000.0, vec(2))
    cache.deleted("", "a")
    assert cache.get("x", None) is None and cache.get("y", "b") is not None
    cache.created("z", "a", 2000.0, vec(3))
    cache.put_read("w", "a", 2000.0, vec(4), cache.deletes)
    assert cache.get("z", None) is None and cache.get("w", None) is None


def test_a_read_raced_by_a_delete_is_not_kept() -> None:
    cache = AttributeCache(clock=Clock())
    before = cache.deletes  # a match starts reading "x" from the faces service ...
    cache.deleted("other", "a")  # ... while a delete is applied (it might be x's)
    cache.put_read("x", "a", 2000.0, vec(1), before)
    assert cache.get("x", "a") is None
    cache.put_read("x", "a", 2000.0, vec(1), cache.deletes)
    assert cache.get("x", "a") is not None


def test_bounded_expired_first_then_oldest() -> None:
    clock = Clock()
    cache = AttributeCache(capacity=3, clock=clock)
    cache.created("old", "a", 1001.0, vec(1))  # within the margin already: expired here
    cache.created("b", "a", 2000.0, vec(2))
    cache.created("c", "a", 2000.0, vec(3))
    cache.created("d", "a", 2000.0, vec(4))
    assert len(cache) == 3 and cache.get("b", "a") is not None
    cache.created("e", "a", 2000.0, vec(5))
    assert len(cache) == 3 and cache.get("b", "a") is None and cache.get("e", "a") is not None
    off = AttributeCache(capacity=0, clock=clock)
    off.created("x", "a", 2000.0, vec(1))
    assert len(off) == 0

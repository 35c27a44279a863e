"""Free-port picks are claimed machine-wide, so two launchers never hand out the same port
in the window between a pick and the child's bind (a cluster-suite flake: "Failed to bind")."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from services.launcher import embedded


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "claims"
    monkeypatch.setattr(embedded, "_CLAIMS_DIR", d)
    return d


def test_a_claimed_port_is_not_picked_again(claims: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every random pick lands on the same two free ports: the first pick claims one of them,
    # so the second must give the other, never the same one.
    rng = random.Random(7)
    monkeypatch.setattr(embedded.random, "randrange", lambda a, b: rng.choice([21001, 21002]))
    monkeypatch.setattr(embedded, "port_is_free", lambda port, host="": True)
    first = embedded.pick_free_port()
    second = embedded.pick_free_port()
    assert {first, second} == {21001, 21002}
    assert sorted(p.name for p in claims.iterdir()) == ["21001", "21002"]


def test_a_stale_claim_is_taken_over(claims: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.random, "randrange", lambda a, b: 21003)
    monkeypatch.setattr(embedded, "port_is_free", lambda port, host="": True)
    claims.mkdir()
    stale = claims / "21003"
    stale.touch()
    old = time.time() - embedded._CLAIM_SECONDS - 5
    os.utime(stale, (old, old))
    assert embedded.pick_free_port() == 21003
    assert stale.stat().st_mtime > old  # claimed anew


def test_a_fresh_claim_is_respected(claims: Path) -> None:
    claims.mkdir()
    (claims / "21004").touch()
    assert embedded._claim(21004) is False
    assert embedded._claim(21005) is True


def test_another_users_stale_claim_does_not_stop_the_pick(
    claims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the shared sticky directory a stale claim of another user cannot be removed (EPERM,
    as CI saw when a launcher running as `nobody` met root's old claims): the port is free, so
    it is picked, not an error."""
    claims.mkdir()
    stale = claims / "21006"
    stale.touch()
    old = time.time() - embedded._CLAIM_SECONDS - 5
    os.utime(stale, (old, old))

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "unlink", refuse)
    assert embedded._claim(21006) is True

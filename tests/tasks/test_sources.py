"""Source fences of the estimator task, without a platform: disk roots, links, the data
directory, allowed networks, ZIP archives."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from services.common import errors
from services.tasks import settings


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    (root / "batch" / "sub").mkdir(parents=True)
    (root / "batch" / "a.jpg").write_bytes(b"a")
    (root / "batch" / "sub" / "b.jpg").write_bytes(b"b")
    (root / "batch" / "note.txt").write_bytes(b"n")
    (root / "other.jpg").write_bytes(b"o")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"s")
    (root / "batch" / "escape.jpg").symlink_to(outside / "secret.jpg")
    (root / "batch" / "inside.jpg").symlink_to(root / "other.jpg")
    data = root / "data"
    data.mkdir()
    monkeypatch.setenv("LUNA_TASKS_DISK_ROOTS", str(root))
    monkeypatch.setenv("LUNA_DATA_DIR", str(data))
    return root


def refused(fn, *args) -> str:
    with pytest.raises(errors.LunaError) as info:
        fn(*args)
    assert info.value.code == errors.BAD_INPUT
    return info.value.detail


def test_disk_paths(disk: Path, tmp_path: Path) -> None:
    assert settings.sources().check_disk_path(str(disk / "batch")) == (disk / "batch").resolve()
    assert "not under a configured disk root" in refused(
        settings.sources().check_disk_path, str(tmp_path / "outside")
    )
    assert "not under" in refused(settings.sources().check_disk_path, f"{disk}/batch/../../outside")
    assert "data directory" in refused(settings.sources().check_disk_path, str(disk / "data"))
    assert "data directory" in refused(
        settings.sources().check_disk_path, str(disk)
    )  # holds the data dir
    assert "not absolute" in refused(settings.sources().check_disk_path, "batch")


def test_disk_listing_and_links(disk: Path) -> None:
    ref = {"path": str(disk / "batch")}
    assert settings.sources().list_disk(ref, True) == ["a.jpg", "note.txt", "sub/b.jpg"]
    assert settings.sources().list_disk(ref, False) == ["a.jpg", "note.txt"]
    assert settings.sources().list_disk({**ref, "postfix": ".jpg"}, True) == ["a.jpg", "sub/b.jpg"]
    assert settings.sources().list_disk({**ref, "prefix": "sub/"}, True) == ["sub/b.jpg"]
    followed = settings.sources().list_disk({**ref, "follow_links": True, "postfix": ".jpg"}, True)
    assert followed == ["a.jpg", "inside.jpg", "sub/b.jpg"]  # escape.jpg leaves the roots
    assert settings.sources().read_disk({**ref, "follow_links": True}, "inside.jpg") == b"o"
    assert "outside" in refused(
        settings.sources().read_disk, {**ref, "follow_links": True}, "escape.jpg"
    )
    assert "link" in refused(settings.sources().read_disk, ref, "escape.jpg")


async def test_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNA_TASKS_SOURCE_NETWORKS", "")
    with pytest.raises(errors.LunaError, match="disabled"):
        await settings.sources().check_url("http://127.0.0.1:1/x.zip")
    monkeypatch.setenv("LUNA_TASKS_SOURCE_NETWORKS", "127.0.0.0/8")
    await settings.sources().check_url("http://127.0.0.1:1/x.zip")
    for url in ("http://10.1.2.3/x.zip", "ftp://127.0.0.1/x", "file:///etc/passwd"):
        with pytest.raises(errors.LunaError):
            await settings.sources().check_url(url)


def test_zip_archives(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("dir/", b"")
        archive.writestr("dir/one.jpg", b"1")
    assert settings.sources().list_zip(good, None) == ["dir/one.jpg"]
    assert settings.sources().read_zip(good, None, "dir/one.jpg") == b"1"
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 nope")
    assert "not a valid ZIP" in refused(settings.sources().list_zip, bad, None)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("x.jpg", b"x")
    assert settings.sources().list_zip(_write(tmp_path / "x.zip", buf.getvalue()), "unused") == [
        "x.jpg"
    ]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path

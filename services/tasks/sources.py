"""Image sources of the estimator task: a network disk, a ZIP by URL, an FTP server.

Sources are a door into the server, so every one is fenced:
- a network disk path must lie under one of LUNA_TASKS_DISK_ROOTS (after resolving `..` and
  links) and never under the platform's data directory; a link is followed only with
  `follow_links` and only to a target that is itself inside a root;
- URL and FTP hosts must resolve only to addresses in LUNA_TASKS_SOURCE_NETWORKS, redirects
  are not followed, and downloads stop at LUNA_TASKS_SOURCE_MAX_BYTES and
  LUNA_TASKS_SOURCE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import hashlib
import io
import ipaddress
import os
import socket
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from services.common import errors

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".ppm", ".webp")


def refuse(detail: str) -> errors.LunaError:
    return errors.LunaError(errors.BAD_INPUT, detail)


def _inside(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def _matches(rel: str, prefix: str, postfix: str) -> bool:
    return rel.startswith(prefix) and rel.endswith(postfix)


_ZIP_CACHE = Path(tempfile.gettempdir()) / "luna-tasks-zip"


def _open_zip(path: Path, password: str | None) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise refuse("the source archive is not a valid ZIP file") from None
    if password:
        archive.setpassword(password.encode())
    return archive


def _ftp_walk(ftp: ftplib.FTP, path: str, recursive: bool) -> list[str]:
    found = []
    for name, facts in ftp.mlsd(path or "/", facts=["type"]):
        full = f"{path.rstrip('/')}/{name}" if path else name
        if facts.get("type") == "file":
            found.append(full)
        elif facts.get("type") == "dir" and recursive:
            found.extend(_ftp_walk(ftp, full, recursive))
    return found


def s3_endpoint(reference: dict[str, Any]) -> str:
    endpoint = reference.get("endpoint")
    if endpoint:
        return str(endpoint)
    return f"https://s3.{reference.get('region') or 'us-east-1'}.amazonaws.com"


@dataclass(frozen=True)
class Sources:
    """Where a task may read its images from, and how much: the network disk roots, the
    networks URL and FTP sources may reach, the size and time limits (`settings.sources()`)."""

    disk_roots: str  # directories separated by os.pathsep
    networks: str  # comma-separated CIDRs
    max_bytes: int
    timeout_s: float
    data_dir: Path  # never readable

    def roots(self) -> list[Path]:
        return [Path(r).resolve() for r in self.disk_roots.split(os.pathsep) if r.strip()]

    def check_disk_path(self, raw: str) -> Path:
        """The resolved directory of a network disk source, or 400 when it is not allowed."""
        path = Path(raw)
        if not path.is_absolute():
            raise refuse(f"network disk path '{raw}' is not absolute")
        resolved = path.resolve()
        data = self.data_dir
        if _inside(resolved, data) or _inside(data, resolved):
            raise refuse(f"network disk path '{raw}' reaches the platform's data directory")
        if not any(_inside(resolved, root) for root in self.roots()):
            raise refuse(f"network disk path '{raw}' is not under a configured disk root")
        if not resolved.is_dir():
            raise refuse(f"network disk path '{raw}' is not a readable directory")
        return resolved

    def list_disk(self, reference: dict[str, Any], recursive: bool) -> list[str]:
        """Files of a network disk source, relative to its path, sorted."""
        base = self.check_disk_path(reference["path"])
        follow = bool(reference.get("follow_links", False))
        prefix, postfix = reference.get("prefix", ""), reference.get("postfix", "")
        roots, data = self.roots(), self.data_dir
        found = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=follow):
            here = Path(dirpath)
            if follow:
                # A followed link must still land inside a root and outside the data directory.
                real = here.resolve()
                if not any(_inside(real, r) for r in roots) or _inside(real, data):
                    dirnames[:] = []
                    continue
            if not recursive:
                dirnames[:] = []
            for name in filenames:
                full = here / name
                if full.is_symlink():
                    if not follow:
                        continue
                    real = full.resolve()
                    if not any(_inside(real, r) for r in roots) or _inside(real, data):
                        continue
                rel = str(full.relative_to(base))
                if _matches(rel, prefix, postfix):
                    found.append(rel)
        return sorted(found)

    def read_disk(self, reference: dict[str, Any], rel: str) -> bytes:
        base = self.check_disk_path(reference["path"])
        full = (base / rel).resolve() if reference.get("follow_links") else base / rel
        if not reference.get("follow_links") and full.is_symlink():
            raise refuse(f"'{rel}' is a link and follow_links is off")
        if not any(_inside(full.resolve(), r) for r in self.roots()):
            raise refuse(f"'{rel}' is outside the configured disk roots")
        if full.stat().st_size > self.max_bytes:
            raise refuse(f"'{rel}' is larger than the source size limit")
        return full.read_bytes()

    def networks_allowed(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(n.strip(), strict=False)
            for n in self.networks.split(",")
            if n.strip()
        ]

    async def check_host(self, host: str, port: int) -> None:
        """Every address `host` resolves to must be in an allowed network (no DNS games)."""
        nets = self.networks_allowed()
        if not nets:
            raise refuse("URL and FTP sources are disabled (LUNA_TASKS_SOURCE_NETWORKS is empty)")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise refuse(f"source host '{host}' cannot be resolved") from None
        for info in infos:
            addr = ipaddress.ip_address(info[4][0])
            if not any(addr in net for net in nets):
                raise refuse(f"source host '{host}' ({addr}) is not in an allowed network")

    async def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise refuse(f"source URL '{url}' is not an http(s) URL")
        await self.check_host(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        )

    async def download(self, url: str, dest: Path) -> None:
        """Fetch `url` into `dest` within the size and time limits; 400 when it cannot."""
        await self.check_url(url)
        limit = self.max_bytes
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(url, allow_redirects=False) as resp,
            ):
                if resp.status != 200:
                    raise refuse(f"source URL '{url}' answered HTTP {resp.status}")
                size = 0
                with dest.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        size += len(chunk)
                        if size > limit:
                            raise refuse(f"source URL '{url}' is larger than {limit} bytes")
                        out.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise refuse(f"source URL '{url}' is unreachable: {type(exc).__name__}") from None

    async def zip_archive(self, reference: str, key: str) -> Path:
        """The archive at `reference`, downloaded once per (task) `key` into a local cache."""
        _ZIP_CACHE.mkdir(parents=True, exist_ok=True)
        path = _ZIP_CACHE / (hashlib.sha256(f"{key}:{reference}".encode()).hexdigest() + ".zip")
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.part")
            try:
                await self.download(reference, tmp)
                tmp.replace(path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return path

    def list_zip(self, path: Path, password: str | None) -> list[str]:
        with _open_zip(path, password) as archive:
            total = sum(i.file_size for i in archive.infolist())
            if total > self.max_bytes * 4:
                raise refuse("the source archive unpacks to more than the size limit allows")
            return sorted(i.filename for i in archive.infolist() if not i.is_dir())

    def read_zip(self, path: Path, password: str | None, name: str) -> bytes:
        with _open_zip(path, password) as archive:
            info = archive.getinfo(name)
            if info.file_size > self.max_bytes:
                raise refuse(f"'{name}' is larger than the source size limit")
            try:
                return archive.read(info)
            except RuntimeError as exc:  # wrong or missing password
                raise refuse(f"'{name}': {exc}") from None
            except (zipfile.BadZipFile, OSError, EOFError):
                raise refuse(f"'{name}' is corrupt in the archive") from None

    def _ftp(self, reference: dict[str, Any], auth: dict[str, Any]) -> ftplib.FTP:
        ftp = ftplib.FTP(timeout=self.timeout_s)
        ftp.connect(reference["host"], int(reference.get("port", 21)))
        ftp.login(auth.get("user", "anonymous"), auth.get("password", "anonymous"))
        return ftp

    async def list_ftp(
        self, reference: dict[str, Any], auth: dict[str, Any], recursive: bool
    ) -> list[str]:
        await self.check_host(reference["host"], int(reference.get("port", 21)))
        base = reference.get("path", "").rstrip("/")
        prefix, postfix = reference.get("prefix", ""), reference.get("postfix", "")

        def walk() -> list[str]:
            with contextlib.closing(self._ftp(reference, auth)) as ftp:
                names = _ftp_walk(ftp, base, recursive)
            rels = [n[len(base) :].lstrip("/") if base else n for n in names]
            return sorted(r for r in rels if _matches(r, prefix, postfix))

        try:
            return await asyncio.to_thread(walk)
        except (ftplib.Error, OSError, EOFError) as exc:
            raise refuse(f"FTP source '{reference['host']}' failed: {exc}") from None

    async def read_ftp(self, reference: dict[str, Any], auth: dict[str, Any], rel: str) -> bytes:
        await self.check_host(reference["host"], int(reference.get("port", 21)))
        base = reference.get("path", "").rstrip("/")
        full = f"{base}/{rel}" if base else rel
        limit = self.max_bytes

        def fetch() -> bytes:
            buf = io.BytesIO()

            def sink(chunk: bytes) -> None:
                if buf.tell() + len(chunk) > limit:
                    raise refuse(f"'{rel}' is larger than the source size limit")
                buf.write(chunk)

            with contextlib.closing(self._ftp(reference, auth)) as ftp:
                ftp.retrbinary(f"RETR {full}", sink)
            return buf.getvalue()

        try:
            return await asyncio.to_thread(fetch)
        except (ftplib.Error, OSError, EOFError) as exc:
            raise refuse(f"FTP file '{rel}' failed: {exc}") from None

    def _s3_client(self, reference: dict[str, Any], auth: dict[str, Any]) -> Any:
        import boto3
        from botocore.config import Config

        signature = {"s3v2": "s3", "s3v4": "s3v4"}[auth.get("signature_version", "s3v4")]
        return boto3.client(
            "s3",
            endpoint_url=reference.get("endpoint"),
            region_name=reference.get("region") or "us-east-1",
            aws_access_key_id=auth["public_access_key"],
            aws_secret_access_key=auth["secret_access_key"],
            config=Config(
                signature_version=signature,
                connect_timeout=self.timeout_s,
                read_timeout=self.timeout_s,
                retries={"max_attempts": 2},
            ),
        )

    async def check_s3(self, reference: dict[str, Any]) -> None:
        await self.check_url(s3_endpoint(reference))

    async def list_s3(
        self, reference: dict[str, Any], auth: dict[str, Any], recursive: bool
    ) -> list[str]:
        await self.check_s3(reference)
        prefix = reference.get("prefix", "")

        def walk() -> list[str]:
            client = self._s3_client(reference, auth)
            kwargs: dict[str, Any] = {"Bucket": reference["bucket_name"], "Prefix": prefix}
            if not recursive:
                kwargs["Delimiter"] = "/"
            keys = []
            for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
            return sorted(k for k in keys if not k.endswith("/"))

        try:
            return await asyncio.to_thread(walk)
        except Exception as exc:  # botocore's errors have no common base worth naming
            raise refuse(f"S3 source '{reference['bucket_name']}' failed: {exc}") from None

    async def read_s3(self, reference: dict[str, Any], auth: dict[str, Any], key: str) -> bytes:
        await self.check_s3(reference)
        limit = self.max_bytes

        def fetch() -> bytes:
            client = self._s3_client(reference, auth)
            obj = client.get_object(Bucket=reference["bucket_name"], Key=key)
            if int(obj.get("ContentLength", 0)) > limit:
                raise refuse(f"'{key}' is larger than the source size limit")
            return bytes(obj["Body"].read(limit + 1)[:limit])

        try:
            return await asyncio.to_thread(fetch)
        except errors.LunaError:
            raise
        except Exception as exc:
            raise refuse(f"S3 object '{key}' failed: {exc}") from None

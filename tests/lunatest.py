"""Helpers for REST tests: credentials headers, account creation, error assertions and the
photos the recognition tests share."""

from __future__ import annotations

import base64
import io
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from PIL import Image
from skimage import data

REQUEST_ID_RE = re.compile(
    r"^[0-9]{10},[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$"
)
UUID_RE = re.compile(r"^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")


def basic(login: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_login(prefix: str = "user") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}@example.com"


async def create_account(
    http: aiohttp.ClientSession, url: str, account_type: str = "user", password: str = "secret1"
) -> tuple[str, dict[str, str]]:
    """A new account; returns its id and Basic credentials headers."""
    login = unique_login()
    async with http.post(
        f"{url}/6/accounts",
        json={"login": login, "password": password, "account_type": account_type},
    ) as resp:
        assert resp.status == 201, await resp.text()
        account_id = (await resp.json())["account_id"]
    return account_id, basic(login, password)


async def assert_error(
    resp: aiohttp.ClientResponse, status: int, code: int, detail_part: str | None = None
) -> dict[str, Any]:
    """A LUNA error: the status, the code, the three documented fields, the request id."""
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert set(body) >= {"error_code", "desc", "detail"}, body
    assert body["error_code"] == code, body
    assert isinstance(body["desc"], str) and body["desc"]
    assert isinstance(body["detail"], str) and body["detail"]
    if detail_part is not None:
        assert detail_part in body["detail"], body
    assert REQUEST_ID_RE.match(resp.headers["Luna-Request-Id"])
    return body


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def same_person_photos() -> dict[str, bytes]:
    """A face to enrol, another photo of the same person (mirrored, smaller, harder JPEG) to
    find it with, and a stranger's face (the installed test crop)."""
    from services.estimator import model_repo as mr  # here: not every REST test needs models

    mirrored = Image.fromarray(data.astronaut()[:, ::-1].copy()).resize((410, 410))
    return {
        "enrolled": jpeg(data.astronaut(), 90),
        "probe": jpeg(np.asarray(mirrored), 60),
        "stranger": (Path(mr.test_images_dir(mr.models_dir())) / "test_crop.jpg").read_bytes(),
    }


async def json_of(resp: Any, status: int) -> Any:
    """The body of `resp`, once its status is `status` (the body is the assertion message)."""
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


def enrol_policies(list_id: str) -> dict[str, Any]:
    """Handler policies that store each detected face, linked to `list_id`, with its event
    (saved before the answer): the enrolment step of the documented pipeline."""
    return {
        "extract_policy": {"extract_face_descriptor": 1},
        "storage_policy": {
            "face_policy": {"store_face": 1, "link_to_lists_policy": [{"list_id": list_id}]},
            "event_policy": {"store_event": 1, "wait_saving": 1},
        },
    }

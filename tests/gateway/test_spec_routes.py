"""Every operation of the served OpenAPI document has a route, and every /6 route is documented.

The document is read the way a client reads it (GET /6/docs/spec with Accept: application/x-yaml)
from the gateway application, and each (path, method) is resolved by the app's own router, so
the README can never again list an operation that answers LUNA's 404 (12013) or 405 (12021).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from services.gateway.about import spec_media_type
from services.gateway.app import build_app
from services.gateway.routes.docs import manual_sources, render_manual

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
PARAM_RE = re.compile(r"\{([^}]+)\}")
# Path parameters whose value is not a UUID.
PARAM_VALUES = {"samples_type": "faces"}


def _concrete(path: str) -> str:
    return PARAM_RE.sub(lambda m: PARAM_VALUES.get(m.group(1), str(uuid.uuid4())), path)


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = build_app()
    async with TestClient(TestServer(app)) as c:
        yield c


async def _served_spec(client: TestClient) -> dict:
    resp = await client.get("/6/docs/spec", headers={"Accept": "application/x-yaml"})
    assert resp.status == 200
    assert resp.content_type == "application/x-yaml"
    return yaml.safe_load(await resp.text())


async def test_every_operation_of_the_served_spec_has_a_route(client: TestClient) -> None:
    spec = await _served_spec(client)
    app = client.server.app
    missing = []
    count = 0
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            count += 1
            request = make_mocked_request(method.upper(), _concrete(path), app=app)
            match = await app.router.resolve(request)
            if match.http_exception is not None:
                missing.append(f"{method.upper()} {path}: {match.http_exception.status}")
    assert count > 140, count  # the whole document was walked
    assert not missing, "operations without a route:\n" + "\n".join(missing)


async def test_every_api_route_is_in_the_served_spec(client: TestClient) -> None:
    """The other direction: a /6 route that the document does not describe is undocumented."""
    spec = await _served_spec(client)
    documented = {
        (m.upper(), PARAM_RE.sub("{}", p))
        for p, item in spec["paths"].items()
        for m in HTTP_METHODS
        if m in item
    }
    undocumented = []
    for route in client.server.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter", "")
        if not path.startswith("/6/") or route.method in ("OPTIONS", "*"):
            continue
        if (route.method, PARAM_RE.sub("{}", path)) not in documented:
            undocumented.append(f"{route.method} {path}")
    assert not undocumented, "routes missing from the document:\n" + "\n".join(undocumented)


@pytest.mark.parametrize("prefix", ["/6", ""])
async def test_spec_formats_and_unserved_accept(client: TestClient, prefix: str) -> None:
    resp = await client.get(f"{prefix}/docs/spec", headers={"Accept": "text/html"})
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "/6/extractor" in await resp.text()
    resp = await client.get(f"{prefix}/docs/spec")  # no Accept: the HTML page
    assert resp.status == 200 and resp.content_type == "text/html"
    resp = await client.get(f"{prefix}/docs/spec", headers={"Accept": "application/json"})
    body = await resp.json()
    assert resp.status == 415, body
    assert body["error_code"] == 12024 and body["desc"] and body["detail"]


def test_spec_media_type_rules() -> None:
    assert spec_media_type("application/x-yaml") == "application/x-yaml"
    assert spec_media_type("text/html;q=0.9, application/x-yaml") == "application/x-yaml"
    assert spec_media_type("*/*") == "text/html"
    assert spec_media_type(None) == "text/html"
    with pytest.raises(Exception) as err:
        spec_media_type("application/msgpack")
    assert getattr(err.value, "code", None) == 12024


async def test_dev_manual_redirects_to_a_page_built_from_the_readmes(client: TestClient) -> None:
    resp = await client.get("/6/docs/dev", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/docs/dev/index.html"
    resp = await client.get("/6/docs/dev")  # followed
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    sources = manual_sources()
    assert any(p.name == "README.md" and p.parent.name == "gateway" for p in sources)
    # Real content of the files, rendered from Markdown (a heading of each README appears).
    for path in sources:
        first_heading = next(
            line.lstrip("# ").strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        )
        assert first_heading.split("`")[0][:20] in page, path
    assert "<table>" in page  # the README's config table is a real table
    assert page == render_manual()


async def test_plugins_is_an_honest_empty_list(client: TestClient) -> None:
    resp = await client.get("/6/plugins")
    assert resp.status == 200
    assert await resp.json() == {"plugins": []}
    assert isinstance(client.server.app, web.Application)


def test_lunas_descriptor_entities_pass_the_request_schemas() -> None:
    from pathlib import Path

    from services.gateway.validation import RequestValidator

    spec_path = Path(__file__).resolve().parents[2] / "services/gateway/openapi"
    validator = RequestValidator(
        yaml.safe_load((spec_path / "luna-platform-v6.yaml").read_text(encoding="utf-8"))
    )
    luna = {"type": "sdk_descriptor", "id": "a", "data": "AAAAAA=="}
    raw = {"type": "raw_descriptor", "id": "b", "data": "AAAAAA==", "version": 200}
    body = {"references": [luna], "candidates": [raw]}
    assert validator.validate_body("matchRaw", body) == body
    assert validator.validate_body("verifyRaw", body) == body
    faces = {"references": [luna], "candidates": [{"filters": {}}]}
    assert validator.validate_body("matchFaces", faces)["references"] == [luna]
    with pytest.raises(Exception) as err:
        validator.validate_body("matchRaw", {"references": [{"type": "x"}], "candidates": [raw]})
    assert getattr(err.value, "code", None) == 12022

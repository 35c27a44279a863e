"""/4 accounts and tokens, liveness, and the service resources (docs, config, health,
plugins, version)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import yaml
from aiohttp import web
from google.protobuf import json_format
from grpc_health.v1 import health_pb2
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import accounts_pb2

from services.common import config, errors, version
from services.gateway import about, multipart
from services.gateway.backport3 import extract as ex
from services.gateway.backport3.core import (
    Caller,
    bad_content_type,
    body_string,
    body_uuids,
    caller,
    fail,
    json_body,
    json_response,
    media_type,
    no_content,
    only_keys,
    q_flag,
    q_page,
    restatus,
    tokens_changed,
)
from services.gateway.backport3.operations import OPERATION_IDS
from services.gateway.backport3.table import Table
from services.gateway.liveness import estimate_liveness, liveness_json

table = Table()
SUCCESS = {"error_code": 0, "desc": "Success", "detail": "Success"}
LIVENESS_IMAGE_TYPES = (
    "image/jpeg",
    "image/png",
    "image/bmp",
    "image/x-portable-pixmap",
    "image/tiff",
)


def _email_ok(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(at and local and "." in domain and " " not in value)


# ------------------------------------------------------------------------------ accounts
@table.route("POST", "/4/accounts")
async def create_account(request: web.Request) -> web.Response:
    body = await json_body(request)
    only_keys(body, {"organization_name", "email", "password"})
    org = body_string(body, "organization_name", 128, required=True)
    email = body_string(body, "email", 64, required=True)
    password = body_string(body, "password", 32, required=True)
    if not _email_ok(email):
        raise errors.bad_json("email", "is not a valid email")
    if len(password) < 8:
        raise errors.bad_json("password", "string shorter than 8")
    clients = request.app["clients"]
    try:
        created = await clients.accounts.CreateAccount(
            accounts_pb2.CreateAccountRequest(
                login=email,
                password=password,
                account_type=accounts_pb2.ACCOUNT_TYPE_USER,
                description=org,
            )
        )
    except errors.LunaError as err:
        if err.http_status == 409:
            # LUNA 3 documents the duplicate email under 400.
            raise fail(
                errors.LOGIN_EXISTS, "An account with given email already exists", 400
            ) from None
        raise
    reply = await clients.backport3.CreateAccount(
        bpb.CreateAccountRequest(
            account_id=created.account.account_id, email=email, organization_name=org
        )
    )
    return json_response({"token": reply.token.token_id}, 201)


async def _basic(request: web.Request) -> tuple[Caller, Any]:
    c = await caller(request, basic_only=True)
    try:
        account = (
            await request.app["clients"].backport3.GetAccount(
                bpb.GetAccountRequest(account_id=c.account_id)
            )
        ).account
    except errors.LunaError as err:
        # A LUNA 5 account never registered through /4 has no LUNA 3 account (11002, 401).
        raise restatus(err, {errors.AUTH_FAILED: 401}) from None
    if account.suspended:
        raise fail(errors.ACCOUNT_SUSPENDED, "Account is suspended")
    return c, account


@table.route("GET", "/4/account")
async def get_account(request: web.Request) -> web.Response:
    _, account = await _basic(request)
    return json_response(
        {
            "organization_name": account.organization_name,
            "email": account.email,
            "suspended": account.suspended,
        }
    )


@table.route("GET", "/4/account/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    c, _ = await _basic(request)
    page, page_size = q_page(request)
    reply = await request.app["clients"].backport3.ListTokens(
        bpb.ListTokensRequest(account_id=c.account_id, page={"page": page, "page_size": page_size})
    )
    return json_response(
        {
            "tokens": [{"token_data": t.token_data, "id": t.token_id} for t in reply.tokens],
            "count": reply.count,
        }
    )


def _token_data(body: dict[str, Any]) -> str:
    only_keys(body, {"token_data"})
    return body_string(body, "token_data", 128, required=True)


@table.route("POST", "/4/account/tokens")
async def create_token(request: web.Request) -> web.Response:
    c, _ = await _basic(request)
    token_data = _token_data(await json_body(request))
    reply = await request.app["clients"].backport3.CreateToken(
        bpb.CreateTokenRequest(account_id=c.account_id, token_data=token_data)
    )
    return json_response({"token": reply.token.token_id}, 201)


@table.route("DELETE", "/4/account/tokens")
async def delete_tokens(request: web.Request) -> web.Response:
    c, _ = await _basic(request)
    body = await json_body(request)
    only_keys(body, {"tokens"})
    token_ids = body_uuids(body, "tokens")
    await request.app["clients"].backport3.DeleteTokens(
        bpb.DeleteTokensRequest(account_id=c.account_id, token_ids=token_ids)
    )
    await tokens_changed(request, c.account_id, token_ids)
    return no_content()


@table.route("GET", "/4/account/tokens/{token_id}")
async def get_token(request: web.Request) -> web.Response:
    c, _ = await _basic(request)
    reply = await request.app["clients"].backport3.GetToken(
        bpb.GetTokenRequest(account_id=c.account_id, token_id=request.match_info["token_id"])
    )
    return json_response({"token_data": reply.token.token_data})


@table.route("PATCH", "/4/account/tokens/{token_id}")
async def patch_token(request: web.Request) -> web.Response:
    c, _ = await _basic(request)
    token_data = _token_data(await json_body(request))
    token_id = request.match_info["token_id"]
    await request.app["clients"].backport3.UpdateToken(
        bpb.UpdateTokenRequest(account_id=c.account_id, token_id=token_id, token_data=token_data)
    )
    # The ws messages report token_data: cached callers must not keep the old one.
    await tokens_changed(request, c.account_id, [token_id])
    return no_content()


@table.route("DELETE", "/4/account/tokens/{token_id}")
async def delete_token(request: web.Request) -> web.Response:
    c, _ = await _basic(request)
    token_id = request.match_info["token_id"]
    await request.app["clients"].backport3.DeleteTokens(
        bpb.DeleteTokensRequest(account_id=c.account_id, token_ids=[token_id])
    )
    await tokens_changed(request, c.account_id, [token_id])
    return no_content()


# ------------------------------------------------------------------------------ liveness
async def _parts(request: web.Request) -> AsyncIterator[multipart.Part]:
    """The body's parts through the gateway's multipart reader; whatever it refuses
    (malformed, nested) is LUNA 3's "bad multipart body" (11049)."""
    try:
        async for part in multipart.parts(request):
            yield part
    except errors.LunaError as err:
        if err.code in (errors.BAD_INPUT, errors.MULTIPART_BAD_TYPE):
            raise fail(errors.BAD_MULTIPART, f"Bad/incomplete input data: {err.detail}") from None
        raise


async def _liveness_images(request: web.Request) -> list[epb.Image]:
    media = media_type(request)
    if media == "multipart/form-data":
        images = []
        names: set[str] = set()
        async for part in _parts(request):
            if part.name != "image":
                continue  # meta / x_meta: informational only for liveness V2
            filename = part.filename
            if not filename or filename in names:
                raise fail(
                    errors.BAD_MULTIPART, "Bad/incomplete input data: unique filename required"
                )
            names.add(filename)
            ptype = part.content_type
            if ptype not in LIVENESS_IMAGE_TYPES and ptype not in ex.BASE64_IMAGE_TYPES:
                raise fail(
                    errors.BAD_PART_CONTENT_TYPE,
                    f"Bad/incomplete input data: bad content type of '{filename}'",
                )
            images.append(epb.Image(data=part.data, content_type=ptype, filename=filename))
        if not images:
            raise fail(errors.BAD_MULTIPART, "Bad/incomplete input data: no image part")
        return images
    if media == "application/json":
        # Images by URL would make this service fetch arbitrary addresses; not served.
        raise fail(
            errors.EXTERNAL_REQUEST_FAILED,
            "External request failed: loading images by URL is not supported",
        )
    if media in LIVENESS_IMAGE_TYPES or media in ex.BASE64_IMAGE_TYPES:
        return [epb.Image(data=await request.read(), content_type=media, filename="raw_image")]
    raise bad_content_type()


@table.route("POST", "/4/liveness")
async def liveness(request: web.Request) -> web.Response:
    await caller(request)
    aggregate = q_flag(request, "aggregate")
    images = await _liveness_images(request)
    reply = await estimate_liveness(
        request.app["clients"].estimator, images, epb.MULTIFACE_POLICY_BEST
    )
    out = []
    live: list[tuple[float, float]] = []
    for image, result in zip(images, reply.results, strict=True):
        item: dict[str, Any] = {"filename": image.filename}
        if result.WhichOneof("outcome") == "error":
            failed = errors.LunaError(errors.IMAGE_DECODE_FAILED, result.error.detail)
            item.update(status=0, liveness=None, error=failed.as_json())
        elif not result.detections.faces:
            failed = errors.LunaError(errors.NO_FACES_FOUND, "No faces found.")
            item.update(status=0, liveness=None, error=failed.as_json())
        else:
            est = json_format.MessageToDict(result.detections.faces[0].estimations)["liveness"]
            shown = liveness_json(est)
            live.append((shown["estimations"]["probability"], shown["estimations"]["quality"]))
            item.update(status=1, liveness=shown, error=SUCCESS)
        out.append(item)
    body: dict[str, Any] = {"images": out}
    if aggregate and live:
        prob = sum(p for p, _ in live) / len(live)
        qual = sum(q for _, q in live) / len(live)
        # The documented thresholds: probability over 50 %, quality over 20 %.
        prediction = 2 if qual <= 0.2 else (1 if prob > 0.5 else 0)
        body["aggregate_estimations"] = {
            "liveness": {
                "prediction": prediction,
                "estimations": {"probability": prob, "quality": qual},
            }
        }
    return json_response(body)


# ------------------------------------------------------------------------------ service
def _spec(app: web.Application) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    # The /4 routes `install` added to this app (the package's ROUTES).
    for method, path, handler in [*app["bp3_routes"], *LISTENER_ONLY]:
        paths.setdefault(path, {})[method.lower()] = {
            "operationId": OPERATION_IDS.get((method, path), handler.__name__),
        }
    paths["/metrics"] = {"get": {"operationId": "metrics"}}
    return {
        "openapi": "3.0.0",
        "info": {
            "title": "LUNA Backport 3 API",
            "version": version.VERSION,
            "description": "The API version is 4. Served by luna-mesh; see docs/DECISIONS.md.",
        },
        "paths": paths,
    }


@table.route("GET", "/4/docs/spec")
async def get_spec(request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "")
    spec = _spec(request.app)
    if "application/x-yaml" in accept:
        return web.Response(
            text=yaml.safe_dump(spec, sort_keys=False), content_type="application/x-yaml"
        )
    if accept and not any(t in accept for t in ("text/html", "*/*", "text/*")):
        raise fail(errors.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
    return web.Response(text=about.spec_html(spec), content_type="text/html")


@table.route("GET", "/4/docs/dev")
async def get_dev_manual(request: web.Request) -> web.Response:
    raise web.HTTPFound("/4/docs/spec")


@table.route("GET", "/4/config")
async def get_config(request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "")
    if accept and not any(t in accept for t in ("application/json", "text/plain", "*/*")):
        raise fail(errors.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
    values: dict[str, str] = {}
    for s in config.declared():
        value = s.get()
        hidden = any(m in s.name for m in about.SECRET_MARKERS) or ("://" in value and "@" in value)
        values[s.name] = "********" if hidden and value else value
    if "text/plain" in accept and "application/json" not in accept:
        return web.Response(text="".join(f"{k} = {v}\n" for k, v in values.items()))
    return json_response(values)


@table.route("GET", "/4/healthcheck")
async def healthcheck(request: web.Request) -> web.Response:
    include = q_flag(request, "include_luna_services")
    started = time.perf_counter()
    clients = request.app["clients"]

    async def check(service: str) -> errors.LunaError | None:
        try:
            reply = await clients.health[service].Check(health_pb2.HealthCheckRequest(), timeout=2)
        except Exception as exc:  # any failure is the reported state
            return errors.LunaError(errors.REQUEST_TIMEOUT, f"{service}: {exc}")
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            return errors.LunaError(errors.REQUEST_TIMEOUT, f"{service}: not serving")
        return None

    # backport3_db: the backport3 service answers SERVING only with its database up.
    checks: dict[str, Any] = {"backport3_db": check("backport3")}
    if include:
        for service, name in about.COMPONENTS.items():
            checks[name] = check(service)
    results = await asyncio.gather(*checks.values())
    elapsed = round(time.perf_counter() - started, 4)
    if all(r is None for r in results):
        return json_response({"execution_time": elapsed})
    report = [
        {"component": n, "error": SUCCESS if e is None else e.as_json(), "status": 0 if e else 1}
        for n, e in zip(checks, results, strict=True)
    ]
    return json_response({"errors": report}, 502)


@table.route("GET", "/4/plugins")
async def get_plugins(request: web.Request) -> web.Response:
    # No plugin mechanism exists in this implementation: an honest empty list.
    return json_response({"plugins": []})


def _ver(text: str) -> dict[str, int]:
    return {"api": 4, **about.semver(text)}


async def get_version(request: web.Request) -> web.Response:
    own = _ver(version.VERSION)
    body = {
        "LUNA PLATFORM": about.semver(version.LUNA_PLATFORM_VERSION),
        "luna_backport3": own,
        "luna_api": {**own, "api": version.LUNA_API_VERSION},
        "luna_remote_sdk": {**own, "api": version.LUNA_API_VERSION},
        "luna_faces": {**own, "api": version.LUNA_API_VERSION},
        "luna_handlers": {**own, "api": version.LUNA_API_VERSION},
        "luna_python_matcher": {**own, "api": version.LUNA_API_VERSION},
        "luna_tasks": {**own, "api": version.LUNA_API_VERSION},
    }
    return json_response({"Version": body})


async def healthcheck_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect(
        "/4/healthcheck" + (f"?{request.query_string}" if request.query_string else "")
    )


async def metrics_disabled(request: web.Request) -> web.Response:
    raise fail(errors.RESOURCE_DISABLED, "Resource is disabled.")


# Only on Backport 3's own listener: on the main port these paths are LUNA 5's.
LISTENER_ONLY = [("GET", "/version", get_version), ("GET", "/healthcheck", healthcheck_redirect)]

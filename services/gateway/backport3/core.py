"""What every /4 route shares: LUNA 3 auth, query parsing, LUNA 3 errors and responses.

Backport 3 answers some LUNA codes with a status other than LUNA 5's (11018 as 400 from the
matching routes, 36005 "No faces found." as 500, ...); `fail` builds the registry's error and
sets the status the Backport 3 catalogue documents for that route.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.common.v1 import account_pb2

from services.common import errors, ids, subjects
from services.gateway import jsonbody, query
from services.gateway.auth import AuthRule
from services.gateway.clients import Clients

CORS = {
    "Access-Control-Allow-Origin": "*",
}
BASIC_ONLY = AuthRule(basic=True, bearer=False, account_header=False)


def fail(code: int, detail: str | None = None, status: int | None = None) -> errors.LunaError:
    err = errors.LunaError(code, detail)
    if status is not None:
        err.http_status = status
    return err


def restatus(err: errors.LunaError, statuses: dict[int, int]) -> errors.LunaError:
    """`err` with the status this route documents for its code (others unchanged)."""
    if err.code in statuses:
        err.http_status = statuses[err.code]
    return err


def descriptor_not_found(descriptor_id: str, status: int = 404) -> errors.LunaError:
    return fail(
        errors.DESCRIPTOR_NOT_FOUND, f"Descriptor with id '{descriptor_id}' not found.", status
    )


def bad_content_type() -> errors.LunaError:
    return fail(errors.BAD_CONTENT_TYPE, "Bad content type")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def no_content() -> web.Response:
    return web.Response(status=204)


# ------------------------------------------------------------------------------ auth
@dataclass(frozen=True)
class Caller:
    """Who calls /4: the account, and the token when X-Auth-Token was used."""

    account_id: str
    token_id: str = ""
    token_data: str = ""

    @property
    def scope(self) -> account_pb2.AccountScope:
        # LUNA 3 has no cross-account readers: every /4 call sees its own account only.
        return account_pb2.AccountScope(account_id=self.account_id)

    @property
    def authorization(self) -> Any:
        """The ws messages' `authorization` field."""
        if self.token_id:
            return {"token_id": self.token_id, "token_data": self.token_data}
        return "basic"


async def basic_caller(request: web.Request) -> Caller:
    scheme = (request.headers.get("Authorization") or "").partition(" ")[0]
    if scheme.lower() != "basic":
        # LUNA 3 knows Basic only in this header (tokens travel in X-Auth-Token).
        raise fail(
            errors.BAD_BASIC_AUTH,
            "Bad format basic authorization header, format: Basic base64(login:password)",
        )
    principal = await request.app["authenticator"].authenticate(request, BASIC_ONLY)
    return Caller(principal.account_id)


async def caller(request: web.Request, *, basic_only: bool = False) -> Caller:
    """Basic (email:password of the account) or, unless basic_only, X-Auth-Token."""
    if request.headers.get("Authorization"):
        return await basic_caller(request)
    token = request.headers.get("X-Auth-Token")
    if token is not None and not basic_only:
        return await token_caller(request, token)
    raise fail(errors.UNAUTHORIZED, 'This resource needs "Authorization" authorization headers')


class TokenCache:
    """Verified X-Auth-Tokens for LUNA_AUTH_CACHE_TTL seconds, as the gateway caches LUNA 5
    credentials. A change to a token is announced on AUTH_CHANGED; every gateway drops it."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._items: dict[str, tuple[float, Caller]] = {}

    def get(self, token: str) -> Caller | None:
        hit = self._items.get(token)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, token: str, c: Caller) -> None:
        if len(self._items) > 100_000:
            self._items.clear()
        self._items[token] = (time.monotonic() + self._ttl, c)

    def forget(self, message: bytes) -> None:
        try:
            change = orjson.loads(message)
        except orjson.JSONDecodeError:
            change = {}
        token_id = change.get("token_id") if isinstance(change, dict) else None
        account_id = change.get("account_id") if isinstance(change, dict) else None
        if token_id:
            self._items.pop(token_id, None)
        elif account_id:
            for key, (_, c) in list(self._items.items()):
                if c.account_id == account_id:
                    self._items.pop(key, None)
        else:
            self._items.clear()


async def tokens_changed(request: web.Request, account_id: str, token_ids: list[str]) -> None:
    """Drop changed tokens here at once and tell every other gateway."""
    cache: TokenCache = request.app["bp3_tokens"]
    nc = request.app["bp3_main"].get("nats")
    for token_id in token_ids:
        message = orjson.dumps({"account_id": account_id, "token_id": token_id})
        cache.forget(message)
        if nc is not None:
            await nc.publish(subjects.AUTH_CHANGED, message)


async def token_caller(request: web.Request, token: str) -> Caller:
    token = token.strip()
    if not ids.is_uuid(token):
        raise fail(
            errors.NOT_UUID4, "Token is not UUID4, format: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        )
    cache: TokenCache = request.app["bp3_tokens"]
    hit = cache.get(token)
    if hit is not None:
        return hit
    clients: Clients = request.app["clients"]
    reply = await clients.backport3.VerifyToken(bpb.VerifyTokenRequest(token_id=token))
    if reply.account.suspended:
        raise fail(errors.ACCOUNT_SUSPENDED, "Account is suspended")
    c = Caller(reply.token.account_id, reply.token.token_id, reply.token.token_data)
    cache.put(token, c)
    return c


# ------------------------------------------------------------------------------ query
def q_flag(request: web.Request, name: str, default: int = 0) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw not in ("0", "1"):
        raise errors.bad_query(name)
    return int(raw)


def q_number(
    request: web.Request,
    name: str,
    lo: float,
    hi: float,
    *,
    ignore_out_of_range: bool = False,
    parse: Callable[[str], float] = float,
) -> float | None:
    return query.number(
        request.query, name, lo, hi, parse=parse, ignore_out_of_range=ignore_out_of_range
    )


def q_int(request: web.Request, name: str, lo: int, hi: int, default: int) -> int:
    value = q_number(request, name, lo, hi, parse=int)
    return default if value is None else int(value)


def q_page(request: web.Request) -> tuple[int, int]:
    return (
        q_int(request, "page", 1, 2**31 - 1, 1),
        q_int(request, "page_size", 1, 1000, 10),
    )


def q_uuid(request: web.Request, name: str, *, required: bool = False) -> str:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise fail(errors.REQUIRED_QUERY_PARAM, f"Required parameters '{name}' not found")
        return ""
    if not ids.is_uuid(raw):
        raise errors.bad_query(name)
    return raw


def q_uuids(request: web.Request, name: str) -> list[str]:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return []
    values = [v.strip() for v in raw.split(",")]
    if not values or len(values) > 1000 or not all(ids.is_uuid(v) for v in values):
        raise errors.bad_query(name)
    return list(dict.fromkeys(values))


def q_do(request: web.Request) -> bool:
    raw = request.query.get("do")
    if raw is None:
        raise fail(errors.REQUIRED_QUERY_PARAM, "Required parameters 'do' not found")
    if raw not in ("attach", "detach"):
        raise errors.bad_query("do")
    return raw == "attach"


def q_string(request: web.Request, name: str, max_len: int) -> str | None:
    raw = request.query.get(name)
    if raw is not None and len(raw) > max_len:
        raise errors.bad_query(name)
    return raw


# ------------------------------------------------------------------------------ json
def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def load_json(raw: bytes) -> Any:
    """Request JSON through the gateway's one parser and its limits (nesting, NUL); LUNA 3
    documents 12022 for every bad JSON body, so text that is not JSON is a 12022 here too."""
    try:
        return jsonbody.loads(raw)
    except errors.LunaError as err:
        if err.code == errors.NOT_JSON:
            raise errors.bad_json("", "request body is not valid json") from None
        raise


async def json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    media = media_type(request)
    raw = await request.read()
    if not raw and not required:
        return {}
    if media != "application/json":
        raise bad_content_type()
    body = load_json(raw)
    if not isinstance(body, dict):
        raise errors.bad_json("", "object required")
    return body


def body_string(body: dict[str, Any], name: str, max_len: int, *, required: bool = False) -> Any:
    if name not in body:
        if required:
            raise errors.bad_json(name, "required property")
        return None
    value = body[name]
    if not isinstance(value, str):
        raise errors.bad_json(name, "string required")
    if len(value) > max_len:
        raise errors.bad_json(name, f"string longer than {max_len}")
    return value


def body_uuids(body: dict[str, Any], name: str) -> list[str]:
    value = jsonbody.nonempty_array(body, name)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not ids.is_uuid(item):
            raise errors.bad_json(f"{name}.{i}", "uuid4 required")
    if len(value) > 1000:
        raise errors.bad_json(name, "at most 1000 items")
    return list(dict.fromkeys(value))


def only_keys(body: dict[str, Any], allowed: set[str]) -> None:
    for key in body:
        if key not in allowed:
            raise errors.bad_json(key, "additional property is not allowed")


def b64decode(text: Any) -> bytes:
    if not isinstance(text, str | bytes):
        raise ValueError("not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None

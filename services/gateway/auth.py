"""Authentication at the edge: Basic, Bearer JWT and the deprecated Luna-Account-Id header.

Credentials are verified by the faces service and cached here for a short time, because
argon2 verification is deliberately slow. The faces service announces every account or token
change on NATS and the cache drops what it held for them, so a revoked credential stops
working at once, not after the TTL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from aiohttp import web
from luna.faces.v1 import accounts_pb2

from services.common import config, errors, ids, permissions
from services.common.permissions import Principal
from services.gateway.clients import Clients

ACCOUNT_TYPE_NAMES = {
    accounts_pb2.ACCOUNT_TYPE_USER: "user",
    accounts_pb2.ACCOUNT_TYPE_ADVANCED_USER: "advanced_user",
    accounts_pb2.ACCOUNT_TYPE_ADMIN: "admin",
}
VISIBILITY_NAMES = {
    accounts_pb2.VISIBILITY_AREA_ACCOUNT: "account",
    accounts_pb2.VISIBILITY_AREA_ALL: "all",
}


@dataclass(frozen=True)
class AuthRule:
    """Which credentials a route accepts; `None` resource means no token permission check."""

    basic: bool = True
    bearer: bool = True
    # False where a request reads or changes credentials: an account id is no secret.
    account_header: bool = True
    resource: str | None = None
    action: str | None = None


CACHE_TTL = config.declare(
    "LUNA_AUTH_CACHE_TTL",
    30.0,
    "Seconds the gateway caches verified credentials (changes invalidate at once).",
)
ALLOW_ACCOUNT_HEADER = config.declare(
    "LUNA_ALLOW_ACCOUNT_ID_HEADER",
    True,
    "Accept the deprecated Luna-Account-Id header as authorization.",
)


ACCOUNT_HEADER_NETWORKS = config.declare(
    "LUNA_ACCOUNT_ID_HEADER_NETWORKS",
    "127.0.0.0/8,::1/128",
    "Comma-separated CIDR networks whose clients may authorize with Luna-Account-Id "
    "(the TCP peer address counts, never a forwarded-for header).",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """The CIDR list of LUNA_ACCOUNT_ID_HEADER_NETWORKS; a typo fails the start, not a request."""
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in value.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise ValueError(f"{ACCOUNT_HEADER_NETWORKS.name}: {exc}") from None


def is_trusted(remote: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether a TCP peer address lies in one of the trusted networks."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class Authenticator:
    def __init__(self, clients: Clients) -> None:
        self._clients = clients
        self._ttl = CACHE_TTL.get_float()
        self._allow_header = ALLOW_ACCOUNT_HEADER.get_bool()
        self._header_networks = parse_networks(ACCOUNT_HEADER_NETWORKS.get())
        # cache key -> (expires_at, principal)
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._inflight: dict[str, asyncio.Future[Principal]] = {}
        # Bumped by every invalidation: a verification that started before one is not cached.
        self._generation = 0
        self._nats: Any = None
        self._reconnects = 0

    def follow(self, nc: Any) -> None:
        """Trust the cache only while `nc` (subscribed to AUTH_CHANGED) is connected.

        Invalidations published while this gateway is cut off from NATS never reach it, so
        it verifies every request afresh while disconnected and forgets everything it held
        when it reconnects.
        """
        self._nats = nc
        self._reconnects = nc.stats["reconnects"]

    def _cache_trusted(self) -> bool:
        nc = self._nats
        if nc is None:
            return True
        reconnects = nc.stats["reconnects"]
        if nc.is_connected and reconnects == self._reconnects:
            return True
        # Invalidations may have been missed: nothing verified before now may be cached.
        self._reconnects = reconnects
        self._generation += 1
        self._cache.clear()
        return bool(nc.is_connected)

    def _forget_all(self) -> None:
        self._generation += 1
        self._inflight.clear()
        self._cache.clear()

    def invalidate(self, message: bytes) -> None:
        """Drop cached credentials of the account or token named in an AUTH_CHANGED message."""
        try:
            change = json.loads(message)
        except ValueError:
            self._forget_all()
            return
        self.forget(account_id=change.get("account_id", ""), token_id=change.get("token_id", ""))

    def forget(self, *, account_id: str = "", token_id: str = "") -> None:
        self._generation += 1
        self._inflight.clear()  # requests after this must not join an older verification
        for key, (_, principal) in list(self._cache.items()):
            if (account_id and principal.account_id == account_id) or (
                token_id and principal.token_id == token_id
            ):
                self._cache.pop(key, None)

    async def _verify(
        self, key: str, method: str, request: Callable[[], accounts_pb2.VerifyCredentialsRequest]
    ) -> Principal:
        """The principal of credentials cached under `key`; `request()` (which may refuse
        malformed credentials) is built only when they must be verified."""
        if self._cache_trusted():
            hit = self._cache.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        # Single flight: when an entry expires under load, every request with those
        # credentials would otherwise run its own password hash check at once (seconds of
        # CPU at concurrency 64); they share one verification instead.
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key, method, request()))
            self._inflight[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(pending)

    def _settled(self, key: str, done: asyncio.Future[Principal]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone (client disconnects)

    async def _fetch(
        self, key: str, method: str, request: accounts_pb2.VerifyCredentialsRequest
    ) -> Principal:
        generation = self._generation
        reply = await self._clients.accounts.VerifyCredentials(request)
        now = time.monotonic()
        lifetime = self._ttl
        if reply.HasField("expiration_time"):
            # Not a moment past the token's own end: the faces service refuses it from then on.
            left = reply.expiration_time.ToDatetime(tzinfo=UTC).timestamp() - time.time()
            lifetime = min(lifetime, left)
        principal = Principal(
            account_id=reply.account_id,
            account_type=ACCOUNT_TYPE_NAMES[reply.account_type],
            method=method,
            token_id=reply.token_id,
            permissions={k: tuple(v.actions) for k, v in reply.permissions.resources.items()},
            visibility_area=VISIBILITY_NAMES.get(reply.visibility_area, "account"),
            emit_events=permissions.from_pb(reply.permissions).get(permissions.EMIT_EVENTS),
        )
        trusted = self._cache_trusted()  # first: it may end the generation
        if trusted and generation == self._generation and lifetime > 0:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = (now + lifetime, principal)
        return principal

    async def authenticate(self, request: web.Request, rule: AuthRule) -> Principal:
        authorization = request.headers.get("Authorization")
        if authorization:
            principal = await self._by_authorization(authorization, rule)
            if principal is not None:
                return principal
        account_id = request.headers.get("Luna-Account-Id")
        if account_id is not None:
            return await self._by_account_header(request, account_id, rule)
        raise errors.LunaError(
            errors.UNAUTHORIZED, 'This resource needs "Authorization" authorization headers'
        )

    async def _by_authorization(self, authorization: str, rule: AuthRule) -> Principal | None:
        """The caller a Basic or Bearer `Authorization` names; None for Basic on a route that
        takes none (the account header may still serve there)."""
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and rule.basic:
            # Keyed by a hash of the header's credentials as sent, so that a cached caller
            # costs one hash: no decoding, no request built (a malformed header never
            # verifies, so it is never cached and is refused on every request).
            credentials = value.strip()
            digest = hashlib.sha256(credentials.encode("utf-8", "surrogateescape")).hexdigest()
            return await self._verify(f"b:{digest}", "basic", lambda: _basic_request(credentials))
        if scheme == "bearer" and rule.bearer:
            token = value.strip()
            principal = await self._verify(
                f"t:{token}", "bearer", lambda: accounts_pb2.VerifyCredentialsRequest(token=token)
            )
            if rule.resource is not None and not principal.allows(rule.resource, rule.action or ""):
                raise errors.LunaError(
                    errors.PERMISSION_DENIED,
                    "Request denied due to token restrictions, required "
                    f"'{rule.action}' permission for '{rule.resource}'",
                )
            return principal
        if scheme == "bearer":
            raise errors.LunaError(
                errors.TOKEN_AUTH_DENIED,
                "Access to the resource is denied using authorization by token",
            )
        if scheme != "basic":
            raise errors.LunaError(
                errors.UNAUTHORIZED,
                f"Unsupported authorization scheme '{scheme}'; use Basic or Bearer",
            )
        return None

    async def _by_account_header(
        self, request: web.Request, account_id: str, rule: AuthRule
    ) -> Principal:
        """The deprecated `Luna-Account-Id` header: only where the route, the settings and the
        peer's network allow it."""
        if not rule.account_header:
            raise errors.LunaError(
                errors.ACCOUNT_HEADER_DISABLED,
                "Authorization with 'Luna-Account-Id' header is not accepted for account "
                "credentials and tokens: use Basic authorization",
            )
        if not self._allow_header:
            raise errors.LunaError(
                errors.ACCOUNT_HEADER_DISABLED,
                "Authorization with 'Luna-Account-Id' header is disabled",
            )
        # The header proves nothing: anyone who has seen an account id (every face and event
        # JSON shows one) could send it. Only peers on networks the operator trusts (a LUNA-era
        # backend behind the same host or VPC) may use it.
        if not is_trusted(request.remote, self._header_networks):
            raise errors.LunaError(
                errors.ACCOUNT_HEADER_DISABLED,
                "Authorization with 'Luna-Account-Id' header is not accepted from this network",
            )
        if not ids.is_uuid(account_id):
            raise errors.LunaError(errors.ACCOUNT_HEADER_NOT_UUID)
        try:
            return await self._verify(
                f"a:{account_id}",
                "account_id",
                lambda: accounts_pb2.VerifyCredentialsRequest(account_id=account_id),
            )
        except errors.LunaError as err:
            if err.code == errors.ACCOUNT_NOT_FOUND:
                raise errors.LunaError(
                    errors.AUTHORIZATION_FAILED,
                    f"Account with id '{account_id}' not found",
                ) from None
            raise


def _basic_request(credentials: str) -> accounts_pb2.VerifyCredentialsRequest:
    login, password = _basic_pair(credentials)
    return accounts_pb2.VerifyCredentialsRequest(
        login_password=accounts_pb2.VerifyCredentialsRequest.LoginPassword(
            login=login, password=password
        )
    )


def _basic_pair(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), non-ASCII text, or not UTF-8 inside
        decoded = ""
    login, sep, password = decoded.partition(":")
    if not sep or not login:
        raise errors.LunaError(
            errors.BAD_BASIC_AUTH,
            "Bad format basic authorization header, format: Basic base64(login:password)",
        )
    if "\x00" in decoded:  # no login or password holds one: accounts refuse them
        raise errors.LunaError(errors.AUTH_FAILED, "Account corresponding login/password not found")
    return login, password

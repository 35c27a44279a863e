"""/6/accounts, /6/account, /6/tokens, /6/credentials/verifier."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.faces.v1 import accounts_pb2, tokens_pb2

from services.common import errors, ids, permissions, times
from services.gateway import convert
from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

ACCOUNT_TYPES = {
    "user": accounts_pb2.ACCOUNT_TYPE_USER,
    "advanced_user": accounts_pb2.ACCOUNT_TYPE_ADVANCED_USER,
}
VISIBILITY = {
    "account": accounts_pb2.VISIBILITY_AREA_ACCOUNT,
    "all": accounts_pb2.VISIBILITY_AREA_ALL,
}
ACCOUNT_AUTH = AuthRule(bearer=False)
# Changing or deleting the account, and every token route (tokens are credentials, and their
# listings show each JWT), need a real credential, never the bare Luna-Account-Id header.
CREDENTIALS_AUTH = AuthRule(bearer=False, account_header=False)


def forget(ctx: Ctx, *, account_id: str = "", token_id: str = "") -> None:
    """Drop cached credentials here at once; other gateways hear it over NATS."""
    ctx.request.app["authenticator"].forget(account_id=account_id, token_id=token_id)


@table.route("POST", "/6/accounts", auth=None, op="createAccount", json_body=True)
async def create_account(ctx: Ctx) -> web.Response:
    account_id = ctx.request.headers.get("Luna-Account-Id", "")
    if account_id and not ids.is_uuid(account_id):
        raise errors.LunaError(errors.ACCOUNT_HEADER_NOT_UUID)
    body = ctx.body
    reply = await ctx.clients.accounts.CreateAccount(
        accounts_pb2.CreateAccountRequest(
            account_id=account_id,
            login=body["login"],
            password=body["password"],
            account_type=ACCOUNT_TYPES[body["account_type"]],
            description=body.get("description", ""),
        )
    )
    return json_response({"account_id": reply.account.account_id}, status=201)


@table.route("GET", "/6/account", auth=ACCOUNT_AUTH, op="getAccount")
async def get_account(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.accounts.GetAccount(
        accounts_pb2.GetAccountRequest(account_id=ctx.account_id)
    )
    return json_response(convert.account(reply.account))


@table.route("PATCH", "/6/account", auth=CREDENTIALS_AUTH, op="patchAccount", json_body=True)
async def patch_account(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body
    if not body:
        raise errors.bad_json("", "At least one field must be specified")
    await ctx.clients.accounts.UpdateAccount(
        accounts_pb2.UpdateAccountRequest(
            account_id=ctx.account_id,
            login=body.get("login"),
            password=body.get("password"),
            account_type=ACCOUNT_TYPES.get(body.get("account_type", ""), 0),
            description=body.get("description"),
        )
    )
    forget(ctx, account_id=ctx.account_id)
    return web.Response(status=204)


@table.route("DELETE", "/6/account", auth=CREDENTIALS_AUTH, op="deleteAccount")
async def delete_account(ctx: Ctx) -> web.Response:
    await ctx.clients.accounts.DeleteAccount(
        accounts_pb2.DeleteAccountRequest(account_id=ctx.account_id)
    )
    forget(ctx, account_id=ctx.account_id)
    return web.Response(status=204)


def token_fields(body: dict[str, Any]) -> tokens_pb2.TokenFields:
    expiration = body.get("expiration_time")
    return tokens_pb2.TokenFields(
        description=body.get("description", ""),
        expiration_time=times.to_timestamp(times.parse_rfc3339(expiration)) if expiration else None,
        permissions=permissions.to_pb(body["permissions"]),
        visibility_area=VISIBILITY[body.get("visibility_area", "all")],
    )


def token_created(token: tokens_pb2.Token, status: int) -> web.Response:
    return json_response(
        {"token": token.token, "token_id": token.token_id, "url": f"/6/tokens/{token.token_id}"},
        status=status,
    )


TOKEN_READ = AuthRule(resource="token", action="view", account_header=False)


@table.route(
    "POST",
    "/6/tokens",
    auth=AuthRule(resource="token", action="creation", account_header=False),
    op="createToken",
    json_body=True,
)
async def create_token(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.tokens.CreateToken(
        tokens_pb2.CreateTokenRequest(scope=ctx.scope(), fields=token_fields(ctx.body))
    )
    return token_created(reply.token, 201)


@table.route("GET", "/6/tokens", auth=TOKEN_READ, op="getTokens")
async def list_tokens(ctx: Ctx) -> web.Response:
    q = ctx.query
    request = tokens_pb2.ListTokensRequest(scope=ctx.listing_scope(), page=ctx.page())
    if "create_time__gte" in q:
        request.create_time_gte.CopyFrom(times.to_timestamp(_time(q["create_time__gte"])))
    if "create_time__lt" in q:
        request.create_time_lt.CopyFrom(times.to_timestamp(_time(q["create_time__lt"])))
    reply = await ctx.clients.tokens.ListTokens(request)
    return json_response({"tokens": [convert.token(t) for t in reply.tokens]})


def _time(value: Any) -> Any:
    return times.parse_rfc3339(value) if isinstance(value, str) else value


@table.route("GET", "/6/tokens/{token_id}", auth=TOKEN_READ, op="getToken")
async def get_token(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.tokens.GetToken(
        tokens_pb2.GetTokenRequest(scope=ctx.scope(), token_id=ctx.path_id("token_id"))
    )
    return json_response(convert.token(reply.token))


@table.route(
    "PUT",
    "/6/tokens/{token_id}",
    auth=AuthRule(resource="token", action="modification", account_header=False),
    op="replaceToken",
    json_body=True,
)
async def replace_token(ctx: Ctx) -> web.Response:
    token_id = ctx.path_id("token_id")
    reply = await ctx.clients.tokens.ReplaceToken(
        tokens_pb2.ReplaceTokenRequest(
            scope=ctx.scope(), token_id=token_id, fields=token_fields(ctx.body)
        )
    )
    forget(ctx, token_id=token_id)
    return token_created(reply.token, 200)


@table.route(
    "DELETE",
    "/6/tokens/{token_id}",
    auth=AuthRule(resource="token", action="deletion", account_header=False),
    op="deleteToken",
)
async def delete_token(ctx: Ctx) -> web.Response:
    token_id = ctx.path_id("token_id")
    await ctx.clients.tokens.DeleteToken(
        tokens_pb2.DeleteTokenRequest(scope=ctx.scope(), token_id=token_id)
    )
    forget(ctx, token_id=token_id)
    return web.Response(status=204)


@table.route("POST", "/6/credentials/verifier", auth=None, op="verifyCredentials", json_body=True)
async def verify_credentials(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body
    if "token" in body:
        request = accounts_pb2.VerifyCredentialsRequest(token=body["token"])
    elif "login" in body:
        request = accounts_pb2.VerifyCredentialsRequest(
            login_password=accounts_pb2.VerifyCredentialsRequest.LoginPassword(
                login=body["login"], password=body["password"]
            )
        )
    else:
        request = accounts_pb2.VerifyCredentialsRequest(account_id=body["account_id"])
    reply = await ctx.clients.accounts.VerifyCredentials(request)
    result: dict[str, Any] = {"account_type": convert.ACCOUNT_TYPE_NAMES[reply.account_type]}
    if "login" in body:
        result["account_id"] = reply.account_id
    if "token" in body:
        result["permissions"] = convert.permissions(reply.permissions)
        result["account_id"] = reply.account_id
    return json_response(result)

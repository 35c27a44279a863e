"""Route table of the REST edge and the per-request context handlers receive.

A route declares its method, path, credentials rule and OpenAPI operation id; the wrapper
authenticates, validates query and body against the OpenAPI document and hands the handler
a `Ctx`. Handlers stay thin: they call one or two gRPC methods and render JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from luna.common.v1 import account_pb2, paging_pb2

from services.common import errors, ids
from services.common.permissions import Principal
from services.gateway import jsonbody
from services.gateway.auth import Authenticator, AuthRule
from services.gateway.clients import Clients
from services.gateway.validation import RequestValidator


@dataclass
class Ctx:
    request: web.Request
    clients: Clients
    principal: Principal | None
    query: dict[str, Any]
    body: Any

    @property
    def account_id(self) -> str:
        assert self.principal is not None
        return self.principal.account_id

    def scope(self, filter_account_id: str = "") -> account_pb2.AccountScope:
        """Whose records the call may touch: the caller's (all, for an account that sees all),
        narrowed to `filter_account_id` when the query names one."""
        assert self.principal is not None
        return account_pb2.AccountScope(
            account_id=self.principal.account_id,
            see_all=self.principal.sees_all,
            filter_account_id=filter_account_id,
        )

    def listing_scope(self) -> account_pb2.AccountScope:
        """The scope of a listing or count: narrowed by the `account_id` query filter."""
        return self.scope(self.query.get("account_id", ""))

    def page(self) -> paging_pb2.Page:
        """The validated query's `page` and `page_size` (LUNA's defaults 1 and 10)."""
        return paging_pb2.Page(
            page=self.query.get("page", 1), page_size=self.query.get("page_size", 10)
        )

    def path_id(self, name: str) -> str:
        """The UUID in the path parameter `name`; anything else is LUNA's 12012."""
        value = self.request.match_info[name]
        if not ids.is_uuid(value):
            raise errors.bad_query(name, f"not a UUID: {value}")
        return value


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    auth: AuthRule | None
    operation_id: str | None
    # Parse the body as JSON and validate it against the operation's schema.
    json_body: bool


@dataclass
class RouteTable:
    routes: list[Route] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        auth: AuthRule | None,
        op: str | None = None,
        json_body: bool = False,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.routes.append(Route(method, path, handler, auth, op, json_body))
            return handler

        return decorate

    def get_and_head(
        self,
        path: str,
        *,
        auth: AuthRule | None,
        ops: tuple[str, str],
        answer: Callable[[Ctx, bool], Awaitable[web.StreamResponse]],
    ) -> None:
        """GET and HEAD of one resource from one function: `answer(ctx, head)`, where HEAD
        finds the same thing and answers without the body."""

        async def get(ctx: Ctx) -> web.StreamResponse:
            return await answer(ctx, False)

        async def head(ctx: Ctx) -> web.StreamResponse:
            return await answer(ctx, True)

        self.route("GET", path, auth=auth, op=ops[0])(get)
        self.route("HEAD", path, auth=auth, op=ops[1])(head)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def wrap(
    route: Route, authenticator: Authenticator, validator: RequestValidator
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        jsonbody.check_query(request.query)
        principal = None
        if route.auth is not None:
            principal = await authenticator.authenticate(request, route.auth)
        query: dict[str, Any] = {}
        body: Any = None
        if route.operation_id is not None:
            query = validator.validate_query(route.operation_id, request.query)
            if route.json_body:
                raw = await request.read()
                if raw:
                    validator.validate_content_type(
                        route.operation_id, request.headers.get("Content-Type")
                    )
                body = validator.parse_json_body(route.operation_id, raw)
        ctx = Ctx(request, request.app["clients"], principal, query, body)
        return await route.handler(ctx)

    return handle


def _options(methods: list[str]) -> Callable[[web.Request], Awaitable[web.Response]]:
    allow = ", ".join(sorted({*methods, "OPTIONS"}))

    async def options(request: web.Request) -> web.Response:
        return json_response({}, headers={"Allow": allow})

    return options


def add_routes(
    app: web.Application,
    tables: Iterable[RouteTable],
    authenticator: Authenticator,
    validator: RequestValidator,
) -> None:
    """Every route of `tables` on `app`, in order, then per path an OPTIONS route answering
    the methods it has."""
    methods_by_path: dict[str, list[str]] = defaultdict(list)
    for table in tables:
        for route in table.routes:
            app.router.add_route(route.method, route.path, wrap(route, authenticator, validator))
            methods_by_path[route.path].append(route.method)
    for path, methods in methods_by_path.items():
        app.router.add_route("OPTIONS", path, _options(methods))

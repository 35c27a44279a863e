"""The routes LUNA gives each stored resource alike, registered from what differs.

`/6/faces`, `/6/lists`, `/6/handlers`, `/6/verifiers`, `/6/events` and `/6/attributes` have a
paged listing, a count, GET and HEAD by id and DELETE by id built the same way: the caller's
scope (narrowed by the `account_id` query filter in listings and counts), the validated
query's filter and page, one gRPC call, JSON. Their gRPC names follow one convention
(`ListFaces(ListFacesRequest)` answering `.faces`, `GetFace(GetFaceRequest)` answering `.face`,
the id field `face_id`), so a `Collection` names its resource once and each route module keeps
only what is its own: filters, renderings and the routes no other resource has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiohttp import web

from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable, json_response

# Request fields a route adds to the conventional ones, from the request.
Extra = Callable[[Ctx], dict[str, Any]]
# JSON of one record (a listing item or the record GET answers).
Render = Callable[[Ctx, Any], Any]
# The HTTP answer to a gRPC reply.
Answer = Callable[[Ctx, Any], web.Response]


def _no_extra(ctx: Ctx) -> dict[str, Any]:
    return {}


def no_content(ctx: Ctx, reply: Any) -> web.Response:
    return web.Response(status=204)


@dataclass(frozen=True)
class Collection:
    table: RouteTable
    pb: ModuleType  # the *_pb2 module with the request messages
    name: str  # "face": the permission resource, the id is "face_id", the stub "faces"

    @property
    def plural(self) -> str:
        return f"{self.name}s"

    @property
    def path(self) -> str:
        return f"/6/{self.plural}"

    @property
    def id_name(self) -> str:
        return f"{self.name}_id"

    def item_path(self, suffix: str = "") -> str:
        return f"{self.path}/{{{self.id_name}}}{suffix}"

    def path_ids(self, ctx: Ctx) -> dict[str, Any]:
        """The caller's scope and the id the path names, as request fields."""
        return {"scope": ctx.scope(), self.id_name: ctx.path_id(self.id_name)}

    def auth(self, action: str) -> AuthRule:
        return AuthRule(resource=self.name, action=action)

    async def call(self, ctx: Ctx, method: str, **fields: Any) -> Any:
        """`method` of the resource's service with its `<method>Request` built from `fields`."""
        request = getattr(self.pb, f"{method}Request")(**fields)
        return await getattr(getattr(ctx.clients, self.plural), method)(request)

    async def get(self, ctx: Ctx, **extra: Any) -> Any:
        """The record the path names (its service answers 404 when it is not the caller's)."""
        reply = await self.call(ctx, f"Get{self.name.capitalize()}", **self.path_ids(ctx), **extra)
        return getattr(reply, self.name)

    def created(self, record_id: str) -> web.Response:
        return json_response({self.id_name: record_id, "url": f"{self.path}/{record_id}"}, 201)

    async def _filtered(
        self, ctx: Ctx, verb: str, filter: Callable[[Ctx], Any], **fields: Any
    ) -> Any:
        """`<verb><Plural>` (ListFaces, CountFaces) over the records the query's filters and
        `account_id` select."""
        method = f"{verb}{self.plural.capitalize()}"
        return await self.call(ctx, method, scope=ctx.listing_scope(), filter=filter(ctx), **fields)

    # ------------------------------------------------------------------------ route makers
    def listing(
        self,
        op: str,
        *,
        filter: Callable[[Ctx], Any],
        render: Render,
        keyed: bool = True,
        extra: Extra = _no_extra,
    ) -> None:
        """GET <path>: one page of records; `keyed=False` for LUNA's bare-array listings."""

        async def listing(ctx: Ctx) -> web.Response:
            reply = await self._filtered(ctx, "List", filter, page=ctx.page(), **extra(ctx))
            items = [render(ctx, item) for item in getattr(reply, self.plural)]
            return json_response({self.plural: items} if keyed else items)

        self.table.route("GET", self.path, auth=self.auth("view"), op=op)(listing)

    def count(self, op: str, *, filter: Callable[[Ctx], Any]) -> None:
        """GET <path>/count: how many records the listing's filters match."""

        async def count(ctx: Ctx) -> web.Response:
            reply = await self._filtered(ctx, "Count", filter)
            return json_response({f"{self.plural}_count": reply.count})

        self.table.route("GET", f"{self.path}/count", auth=self.auth("view"), op=op)(count)

    def get_and_check(
        self, ops: tuple[str, str], *, render: Render, extra: Extra = _no_extra
    ) -> None:
        """GET <path>/{id} renders the record, HEAD answers 200 when it is there."""

        async def answer(ctx: Ctx, head: bool) -> web.Response:
            record = await self.get(ctx, **extra(ctx))
            return web.Response(status=200) if head else json_response(render(ctx, record))

        self.table.get_and_head(self.item_path(), auth=self.auth("view"), ops=ops, answer=answer)

    def by_id(
        self,
        method: str,
        suffix: str,
        op: str,
        rpc: str,
        *,
        auth: AuthRule,
        fields: Extra = _no_extra,
        answer: Answer = no_content,
    ) -> None:
        """<method> <path>/{id}<suffix>: `rpc` with the caller's scope, the id and `fields`
        (a PUT or PATCH body is validated JSON); 204 unless `answer` renders the reply."""

        async def by_id(ctx: Ctx) -> web.Response:
            return answer(ctx, await self.call(ctx, rpc, **self.path_ids(ctx), **fields(ctx)))

        json_body = method in ("PUT", "PATCH")
        self.table.route(method, self.item_path(suffix), auth=auth, op=op, json_body=json_body)(
            by_id
        )

    def delete(self, op: str, *, extra: Extra = _no_extra) -> None:
        """DELETE <path>/{id}: 204, or the service's 404."""
        rpc = f"Delete{self.name.capitalize()}"
        self.by_id("DELETE", "", op, rpc, auth=self.auth("deletion"), fields=extra)

"""The /4 route table: plain aiohttp handlers (LUNA 3 auth and validation happen inside).

Every route refuses a NUL anywhere in its query first (12012), as the /6 routes do: the
gateway's one check (`jsonbody.check_query`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from services.gateway import jsonbody

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Table:
    routes: list[tuple[str, str, Handler]] = field(default_factory=list)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            @functools.wraps(handler)
            async def checked(request: web.Request) -> web.StreamResponse:
                jsonbody.check_query(request.query)
                return await handler(request)

            self.routes.append((method, path, checked))
            return handler

        return decorate

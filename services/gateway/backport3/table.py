"""The /4 route table: plain aiohttp handlers (LUNA 3 auth and validation happen inside)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Table:
    routes: list[tuple[str, str, Handler]] = field(default_factory=list)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.routes.append((method, path, handler))
            return handler

        return decorate

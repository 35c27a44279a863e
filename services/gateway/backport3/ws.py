"""LUNA 3 event notifications: /4/ws and the deprecated /api/subscribe.

Each websocket follows its account's NATS subject (see `publish`) and forwards what passes
its filters.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from services.common import errors, ids
from services.gateway.backport3.core import (
    Caller,
    bad_query,
    basic_caller,
    caller,
    fail,
    token_caller,
)
from services.gateway.backport3.publish import nats, subject
from services.gateway.backport3.table import Table

table = Table()


class Filters:
    def __init__(self, request: web.Request) -> None:
        q = request.query
        self.event_type = q.get("event_type")
        if self.event_type not in (None, "match", "extract"):
            raise bad_query("event_type")
        observe = q.get("observe")
        self.observe = {x.strip() for x in observe.split(",")} if observe else None
        if self.observe and not all(x == "basic" or ids.is_uuid(x) for x in self.observe):
            raise bad_query("observe")
        self.gender = q.get("gender")
        if self.gender not in (None, "male", "female"):
            raise bad_query("gender")
        self.age_gt = self._num(q, "age__gt", 0)
        self.age_lt = self._num(q, "age__lt", 100)
        self.glasses_gt = self._num(q, "glasses__gt", 0)
        self.glasses_lt = self._num(q, "glasses__lt", 1)
        self.similarity_gt = self._num(q, "similarity__gt", 0)
        self.list_id = q.get("list")
        if self.list_id is not None and not ids.is_uuid(self.list_id):
            raise bad_query("list")
        self.ages = "age__gt" in q or "age__lt" in q

    @staticmethod
    def _num(q: Any, name: str, default: float) -> float:
        raw = q.get(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise bad_query(name) from None

    def passes(self, m: dict[str, Any]) -> bool:
        if self.event_type and m["event_type"] != self.event_type:
            return False
        if self.observe is not None:
            auth = m["authorization"]
            who = "basic" if auth == "basic" else auth.get("token_id")
            if who not in self.observe:
                return False
        if self.gender or self.ages:
            faces = m["result"].get("faces") or [m["result"].get("face") or {}]
            if not any(self._face_passes(f.get("attributes") or {}) for f in faces):
                return False
        if m["event_type"] == "match":
            if self.list_id and (m.get("candidate") or {}).get("list_id") != self.list_id:
                return False
            sims = [x.get("similarity", 0.0) for x in m["result"].get("candidates", [])]
            if self.similarity_gt > 0 and not any(s > self.similarity_gt for s in sims):
                return False
        return True

    def _face_passes(self, attrs: dict[str, Any]) -> bool:
        if self.gender:
            if "gender" not in attrs or attrs["gender"] != (1 if self.gender == "male" else 0):
                return False
        if self.ages:
            age = attrs.get("age")
            if age is None or not self.age_gt < age < self.age_lt:
                return False
        return True


async def _serve(request: web.Request, c: Caller) -> web.WebSocketResponse:
    filters = Filters(request)
    nc = nats(request)
    if nc is None:
        raise fail(errors.WS_DISABLED, "WS subscription is disabled")
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)

    async def on_message(msg: Any) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a stalled client loses, others don't
            queue.put_nowait(msg.data)

    sub = await nc.subscribe(subject(c.account_id), cb=on_message)
    ws = web.WebSocketResponse(autoping=True, heartbeat=30)
    try:
        await ws.prepare(request)

        async def pump() -> None:
            while True:
                data = await queue.get()
                message = orjson.loads(data)
                if filters.passes(message):
                    await ws.send_str(data.decode())

        task = asyncio.create_task(pump())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    finally:
        await sub.unsubscribe()
    return ws


@table.route("GET", "/4/ws")
async def ws_handshake(request: web.Request) -> web.StreamResponse:
    return await _serve(request, await caller(request))


@table.route("GET", "/api/subscribe")
async def ws_legacy(request: web.Request) -> web.StreamResponse:
    basic = request.query.get("basic")
    token = request.query.get("auth_token")
    if request.headers.get("Authorization") or request.headers.get("X-Auth-Token"):
        c = await caller(request)
    elif basic:
        cloned = request.clone(headers={**request.headers, "Authorization": basic})
        c = await basic_caller(cloned)
    elif token:
        c = await token_caller(request, token)
    else:
        raise fail(errors.UNAUTHORIZED, 'This resource needs "Authorization" authorization headers')
    return await _serve(request, c)

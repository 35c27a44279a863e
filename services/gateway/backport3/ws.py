"""LUNA 3 event notifications: /4/ws and the deprecated /api/subscribe.

Each websocket is a subscription of the gateway's Sender hub, which follows what the events
service publishes on EVENTS: it gets its account's Backport 3 events (see `events`) that pass
its LUNA 3 filters and sends each as LUNA 3's `message_from_ws`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from services.common import errors, ids
from services.common.stopping import cancel_and_wait
from services.gateway.backport3 import events as bp3_events
from services.gateway.backport3.core import (
    Caller,
    basic_caller,
    caller,
    fail,
    token_caller,
)
from services.gateway.backport3.table import Table
from services.gateway.sender import Subscription

log = logging.getLogger("luna.gateway.backport3")
table = Table()
# Autoping (RFC 6455 ping frames) every this many seconds; a peer that stops answering is
# dropped after the same again.
AUTOPING_S = 30.0


class Filters:
    def __init__(self, request: web.Request) -> None:
        q = request.query
        self.event_type = q.get("event_type")
        if self.event_type not in (None, "match", "extract"):
            raise errors.bad_query("event_type")
        observe = q.get("observe")
        self.observe = {x.strip() for x in observe.split(",")} if observe else None
        if self.observe and not all(x == "basic" or ids.is_uuid(x) for x in self.observe):
            raise errors.bad_query("observe")
        # Events name tokens by their hash (see events.authorization).
        self.observed = (
            {x if x == "basic" else bp3_events.token_hash(x) for x in self.observe}
            if self.observe is not None
            else None
        )
        self.gender = q.get("gender")
        if self.gender not in (None, "male", "female"):
            raise errors.bad_query("gender")
        self.age_gt = self._num(q, "age__gt", 0)
        self.age_lt = self._num(q, "age__lt", 100)
        self.glasses_gt = self._num(q, "glasses__gt", 0)
        self.glasses_lt = self._num(q, "glasses__lt", 1)
        self.similarity_gt = self._num(q, "similarity__gt", 0)
        self.list_id = q.get("list")
        if self.list_id is not None and not ids.is_uuid(self.list_id):
            raise errors.bad_query("list")
        self.ages = "age__gt" in q or "age__lt" in q

    @staticmethod
    def _num(q: Any, name: str, default: float) -> float:
        raw = q.get(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise errors.bad_query(name) from None

    def passes(self, m: dict[str, Any]) -> bool:
        """Whether a Backport 3 event record (events.record_of) passes."""
        result = m.get("result")
        if not isinstance(result, dict):
            return False
        if self.event_type and m["event_type"] != self.event_type:
            return False
        if self.observed is not None:
            auth = m.get("authorization")
            who = auth.get("token_sha256") if isinstance(auth, dict) else auth
            if who not in self.observed:
                return False
        if self.gender or self.ages:
            faces = result.get("faces") or [result.get("face") or {}]
            if not any(self._face_passes(f.get("attributes") or {}) for f in faces):
                return False
        if m["event_type"] == "match":
            if self.list_id and (m.get("candidate") or {}).get("list_id") != self.list_id:
                return False
            sims = [x.get("similarity", 0.0) for x in result.get("candidates", [])]
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


class _Matcher:
    """The hub's filter of a /4/ws subscription: the account's Backport 3 events (see
    `events.record_of`) whose LUNA 3 record passes the handshake's filters."""

    def __init__(self, filters: Filters) -> None:
        self.filters = filters

    def matches(self, event: dict[str, Any]) -> bool:
        record = bp3_events.record_of(event)
        return record is not None and self.filters.passes(record)


async def _serve(request: web.Request, c: Caller) -> web.WebSocketResponse:
    filters = Filters(request)
    main = request.app["bp3_main"]
    if main.get("nats") is None:
        raise fail(errors.WS_DISABLED, "WS subscription is disabled")
    hub = main["sender_hub"]
    clients = request.app["clients"]
    tokens = bp3_events.Tokens(c.account_id)
    sub = Subscription(c.account_id, _Matcher(filters))  # type: ignore[arg-type]
    ws = web.WebSocketResponse(autoping=True, heartbeat=AUTOPING_S)
    await ws.prepare(request)

    async def pump() -> None:
        while True:
            event = orjson.loads(await sub.queue.get())["event"]
            record = bp3_events.record_of(event)
            if record is None:
                continue
            auth = record.get("authorization")
            wanted = auth.get("token_sha256") if isinstance(auth, dict) else None
            try:
                known = await tokens.resolve(clients, str(wanted)) if wanted else {}
            except Exception:
                log.exception("cannot read the tokens of account %s", c.account_id)
                known = tokens.known
            message = bp3_events.message(event, record, known)
            await ws.send_str(orjson.dumps(message).decode())

    hub.subscriptions.add(sub)
    task = asyncio.create_task(pump())
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    finally:
        hub.subscriptions.discard(sub)
        await cancel_and_wait(task)
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

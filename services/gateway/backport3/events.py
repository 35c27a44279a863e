"""LUNA 3 event notifications through the events service.

Every /4 operation that LUNA 3 reports (extractions and matchings) records one LUNA 5 event
with `EventsService.SaveEvents` under the account's Backport 3 handler (a dynamic LUNA 5
handler made on first need). The events service stores it (so `/6/events` lists it) and
publishes it on the EVENTS stream; `/4/ws` follows EVENTS through the gateway's Sender hub and
rebuilds LUNA 3's `message_from_ws` from the event (`message`).

The LUNA 5 event (docs/DECISIONS.md, "Backport 3 ws events"):
- `source`: the LUNA 3 source (descriptors, verify, identify, match, search);
- `tags`: ["backport3", <LUNA 3 event_type>] ("extract" or "match");
- `create_time`: when it happened;
- `matches` (match events): one match labelled with the source whose candidates are the
  matched descriptors (`face_id`) with their similarity, so LUNA 5's top-match columns and
  filters see them;
- `meta.backport3`: what LUNA 3's message carries beyond that, as LUNA 3 spells it:
  `event_type`, `timestamp`, `authorization`, `result`, and `template` / `candidate` when the
  operation has them. The authorization names a token by its SHA-256 (`token_sha256`) and not
  by the token itself: an X-Auth-Token is a credential, and events are readable through /6 by
  anyone allowed to view the account's events. /4/ws puts the token back from the account's
  tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.common.v1 import paging_pb2
from luna.events.v1 import events_pb2, handlers_pb2

from services.common import errors, times
from services.common.pbjson import to_struct
from services.gateway.backport3.core import Caller

log = logging.getLogger("luna.gateway.backport3")
TAG = "backport3"
META_KEY = "backport3"
HANDLER_DESCRIPTION = "Backport 3 events (LUNA 3 /4/ws)"
DYNAMIC = 1
HANDLERS_KEY = "bp3_event_handlers"


def token_hash(token_id: str) -> str:
    return hashlib.sha256(token_id.encode()).hexdigest()


def authorization(c: Caller) -> Any:
    """The caller as the event keeps it: "basic", or the token's hash and data."""
    if c.token_id:
        return {"token_sha256": token_hash(c.token_id), "token_data": c.token_data}
    return "basic"


def _similarity(value: Any) -> float:
    return min(1.0, max(0.0, float(value)))


def _matches(source: str, result: Any) -> list[dict[str, Any]]:
    candidates = []
    for cand in result.get("candidates") or ():
        face_id = cand.get("descriptor_id") or cand.get("id")
        if face_id and isinstance(cand.get("similarity"), (int, float)):
            item = {"face_id": face_id, "similarity": _similarity(cand["similarity"])}
            if cand.get("person_id"):
                item["person_id"] = cand["person_id"]
            candidates.append(item)
    return [{"label": source, "candidates": candidates}]


def build_event(
    c: Caller,
    event_type: str,
    source: str,
    *,
    result: Any,
    template: dict[str, Any] | None = None,
    candidate: dict[str, Any] | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """The LUNA 5 event recording one LUNA 3 operation (its save-event body)."""
    when = time.time() if timestamp is None else timestamp
    record: dict[str, Any] = {
        "event_type": event_type,
        "timestamp": when,
        "authorization": authorization(c),
        "result": result,
    }
    if template is not None:
        record["template"] = template
    if candidate is not None:
        record["candidate"] = candidate
    event: dict[str, Any] = {
        "source": source,
        "tags": [TAG, event_type],
        "create_time": times.to_rfc3339(datetime.fromtimestamp(when, UTC)),
        "meta": {META_KEY: record},
    }
    if event_type == "match":
        event["matches"] = _matches(source, result)
    return event


def record_of(event: dict[str, Any]) -> dict[str, Any] | None:
    """The LUNA 3 part of a LUNA 5 event, or None when the event is not Backport 3's."""
    if TAG not in (event.get("tags") or ()):
        return None
    meta = event.get("meta")
    record = meta.get(META_KEY) if isinstance(meta, dict) else None
    if not isinstance(record, dict) or record.get("event_type") not in ("extract", "match"):
        return None
    return record


def message(event: dict[str, Any], record: dict[str, Any], tokens: dict[str, str]) -> Any:
    """LUNA 3's `message_from_ws` from a Backport 3 event; `tokens` maps token hashes back to
    the tokens (a token deleted since has no id any more: null)."""
    auth = record.get("authorization")
    if isinstance(auth, dict):
        auth = {
            "token_id": tokens.get(str(auth.get("token_sha256"))),
            "token_data": auth.get("token_data", ""),
        }
    out: dict[str, Any] = {
        "timestamp": record.get("timestamp"),
        "event_type": record["event_type"],
        "source": event.get("source"),
        "authorization": auth,
        "result": record.get("result"),
    }
    for key in ("template", "candidate"):
        if key in record:
            out[key] = record[key]
    return out


# ------------------------------------------------------------------------------ recording
async def _find_handler(clients: Any, c: Caller) -> str:
    reply = await clients.handlers.ListHandlers(
        handlers_pb2.ListHandlersRequest(
            scope=c.scope,
            filter=handlers_pb2.HandlerFilter(
                description=HANDLER_DESCRIPTION, handler_type=DYNAMIC
            ),
            page=paging_pb2.Page(page=1, page_size=1000),
        )
    )
    mine = [h for h in reply.handlers if h.description == HANDLER_DESCRIPTION]
    if not mine:
        return ""
    # Oldest first: every gateway settles on the same one should two have made one at once.
    mine.sort(key=lambda h: (h.create_time.seconds, h.create_time.nanos, h.handler_id))
    return mine[0].handler_id


class EventHandlers:
    """Each account's Backport 3 handler: found (the oldest such), or made the first time;
    one per gateway process (`install` puts it on the main app)."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def get(self, clients: Any, c: Caller) -> str:
        hit = self._ids.get(c.account_id)
        if hit:
            return hit
        async with self._lock:
            handler_id = self._ids.get(c.account_id) or await _find_handler(clients, c)
            if not handler_id:
                made = await clients.handlers.CreateHandler(
                    handlers_pb2.CreateHandlerRequest(
                        scope=c.scope,
                        fields=handlers_pb2.HandlerFields(
                            description=HANDLER_DESCRIPTION, handler_type=DYNAMIC
                        ),
                    )
                )
                handler_id = await _find_handler(clients, c) or made.handler.handler_id
            self._ids[c.account_id] = handler_id
        return handler_id

    def forget(self, account_id: str) -> None:
        self._ids.pop(account_id, None)


async def record_event(
    request: web.Request, c: Caller, event_type: str, source: str, **fields: Any
) -> None:
    """Save the operation's event (`build_event`'s with `fields`: result, template,
    candidate) through the events service, which publishes it on EVENTS.

    LUNA 3 notifications are best effort: the operation has succeeded, so a failure here is
    logged and the answer stands.
    """
    handlers: EventHandlers = request.app["bp3_main"][HANDLERS_KEY]
    clients = request.app["clients"]
    event = build_event(c, event_type, source, **fields)
    for attempt in (1, 2):
        try:
            handler_id = await handlers.get(clients, c)
            await clients.events.SaveEvents(
                events_pb2.SaveEventsRequest(
                    scope=c.scope,
                    handler_id=handler_id,
                    events=[events_pb2.EventInput(event=to_struct(event))],
                    wait_saving=False,
                )
            )
            return
        except errors.LunaError as exc:
            if exc.code == errors.HANDLER_NOT_FOUND and attempt == 1:
                # Deleted through /6: make a new one.
                handlers.forget(c.account_id)
                continue
            log.warning("cannot record the Backport 3 %s event: %s", source, exc)
            return
        except Exception:
            log.exception("cannot record the Backport 3 %s event", source)
            return


# ------------------------------------------------------------------------------ tokens
@dataclass
class Tokens:
    """The account's tokens by hash, for putting them back into ws messages; read again at
    most every `refresh_s` seconds when a hash is unknown."""

    account_id: str
    refresh_s: float = 5.0
    known: dict[str, str] = field(default_factory=dict)
    _read_at: float = -1e9

    async def resolve(self, clients: Any, wanted: str) -> dict[str, str]:
        if wanted in self.known or time.monotonic() - self._read_at < self.refresh_s:
            return self.known
        self._read_at = time.monotonic()
        known: dict[str, str] = {}
        page = 1
        while True:
            reply = await clients.backport3.ListTokens(
                bpb.ListTokensRequest(
                    account_id=self.account_id, page=paging_pb2.Page(page=page, page_size=1000)
                )
            )
            for t in reply.tokens:
                known[token_hash(t.token_id)] = t.token_id
            if len(reply.tokens) < 1000:
                break
            page += 1
        self.known = known
        return known

"""Periodic work of the faces service: outbox safety-net flushes and the purge of expired
temporary attributes. Each loop survives its own errors (logged) so one bad round never
stops the service from publishing or purging later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.common import config
from services.common.stopping import cancel_and_wait
from services.faces import attributes, outbox

log = logging.getLogger("luna.faces.background")

OUTBOX_INTERVAL = config.declare(
    "LUNA_FACES_OUTBOX_INTERVAL_S",
    1.0,
    "How often the faces service retries publishing FACES_CHANGES left unpublished (seconds).",
)
PURGE_INTERVAL = config.declare(
    "LUNA_FACES_PURGE_INTERVAL_S",
    60.0,
    "How often the faces service deletes expired temporary attributes and old unlink records "
    "(seconds). Expired attributes are invisible at once either way.",
)
UNLINK_RETENTION = config.declare(
    "LUNA_FACES_UNLINK_RETENTION_S",
    attributes.UNLINK_RETENTION_S,
    "How long records of list unlinks are kept for incremental readers (seconds).",
)


async def _every(interval_s: float, work: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s failed; retrying in %.0f s", name, interval_s, exc_info=True)


@dataclass
class Background:
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        await asyncio.gather(*(cancel_and_wait(task) for task in self.tasks))


def start(publisher: outbox.Publisher, attrs: attributes.Attributes) -> Background:
    return Background(
        [
            asyncio.create_task(
                _every(OUTBOX_INTERVAL.get_float(), publisher.flush, "outbox flush")
            ),
            asyncio.create_task(
                _every(
                    PURGE_INTERVAL.get_float(),
                    lambda: attrs.purge_expired(UNLINK_RETENTION.get_float()),
                    "purge",
                )
            ),
        ]
    )

"""Helpers for task tests through REST: the Tasks API URL and waiting for a task to finish."""

from __future__ import annotations

import asyncio
import time
from typing import Any

DONE, FAILED, CANCELLED = 5, 3, 2


def tasks_url(platform: Any) -> str:
    """The Luna Tasks API (/2) of the platform under test (`luna up` records its port)."""
    return platform.runtime["tasks_api_url"]


async def wait_task(
    http: Any,
    url: str,
    task_id: int,
    headers: dict[str, str],
    statuses: tuple[int, ...] = (DONE, FAILED, CANCELLED),
    timeout: float = 120,
) -> dict[str, Any]:
    """Poll `<url>/tasks/{task_id}` (url ends in /6 or /2) until its status is in `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(f"{url}/tasks/{task_id}", headers=headers) as r:
            # 504 while a killed tasks service is being restarted.
            assert r.status in (200, 504), await r.text()
            task = await r.json()
        if r.status == 200 and task["task_status"] in statuses:
            return task
        assert time.monotonic() < deadline, task
        await asyncio.sleep(0.2)

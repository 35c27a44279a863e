"""`luna tasks watch ID`: a progress bar of one task, polled from the Tasks API."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO

import aiohttp

from services.common import config
from services.common.shared_settings import TASKS_API_PORT

STATUS_NAMES = {
    0: "pending",
    1: "in progress",
    2: "cancelled",
    3: "failed",
    4: "collect results",
    5: "done",
}
FINISHED = (2, 3, 5)
WIDTH = 30


def bar(task: dict[str, Any]) -> str:
    done, total = task["count_task_parts_done"], max(task["count_task_parts_all"], 1)
    filled = WIDTH * done // total
    return (
        f"task {task['task_id']} [{'#' * filled}{'.' * (WIDTH - filled)}] "
        f"{done}/{total} parts  {STATUS_NAMES.get(task['task_status'], '?')}"
    )


def default_url() -> str:
    path = config.data_dir() / "runtime.json"
    if path.exists():
        runtime = json.loads(path.read_text())
        if "tasks_api_url" in runtime:
            return str(runtime["tasks_api_url"])
    return f"http://127.0.0.1:{TASKS_API_PORT.get()}"


async def watch(
    task_id: int, *, url: str | None = None, interval: float = 0.5, out: TextIO = sys.stdout
) -> int:
    """Redraw the bar until the task finishes; exit status 0 only for a done task."""
    base = (url or default_url()).rstrip("/")
    tty = out.isatty()
    async with aiohttp.ClientSession() as http:
        last = ""
        while True:
            async with http.get(f"{base}/2/tasks/{task_id}") as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200:
                    print(f"task {task_id}: {body.get('detail', body)}", file=out)
                    return 2
            line = bar(body)
            if line != last:
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=out)
                out.flush()
                last = line
            if body["task_status"] in FINISHED:
                if tty:
                    print(file=out)
                return 0 if body["task_status"] == 5 else 1
            await asyncio.sleep(interval)

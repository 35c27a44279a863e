"""`luna status` while a service is being restarted: its pid is not known yet (null in
runtime.json); the report must say NOT RUNNING/NOT SERVING, not crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.launcher.embedded import pick_free_port
from services.launcher.supervisor import status


async def test_status_reports_a_restarting_worker_and_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"127.0.0.1:{pick_free_port()}"
    runtime = {
        "url": f"http://{dead}",
        "services": {
            "tasks_worker_1": {"pid": None, "address": dead, "log": ""},
            "faces": {"pid": None, "address": dead, "log": ""},
        },
    }
    (tmp_path / "runtime.json").write_text(json.dumps(runtime))
    assert await status(tmp_path) == 1
    out = capsys.readouterr().out
    assert "tasks_worker_1 NOT RUNNING" in out.replace("  ", " ").replace("  ", " ")
    faces_line = next(line for line in out.splitlines() if line.startswith("faces"))
    assert "NOT SERVING" in faces_line and "pid=None" in faces_line

"""/6/tasks/*: the platform's task routes (built with the Tasks API's in tasks_http)."""

from __future__ import annotations

from services.gateway.tasks_http import PLATFORM, build

table = build(PLATFORM)

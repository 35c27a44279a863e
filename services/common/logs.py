"""Structured logs that carry the `Luna-Request-Id` of the request being served."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

from services.common import config

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("luna_request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def setup(service: str) -> logging.Logger:
    """Configure the root logger once per process and return the service's logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if config.log_json():
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level().upper())
    return logging.getLogger(f"luna.{service}")

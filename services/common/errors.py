"""The LUNA error model: one registry of codes (code -> HTTP status, desc) and one exception.

Services raise `LunaError(code, detail)`; the gRPC interceptor turns it into a status plus the
`luna-error-bin` trailer, and the gateway renders it as `{"error_code", "desc", "detail"}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import grpc
import yaml

REGISTRY_PATH = Path(__file__).with_name("luna_errors.yaml")
ERROR_TRAILER = "luna-error-bin"


@dataclass(frozen=True)
class ErrorSpec:
    code: int
    http_status: int
    desc: str


@cache
def registry() -> dict[int, ErrorSpec]:
    entries = yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))
    if isinstance(entries, dict):
        entries = entries.get("errors", [])
    return {
        int(e["code"]): ErrorSpec(int(e["code"]), int(e["http_status"]), str(e["desc"]))
        for e in entries
    }


def spec(code: int) -> ErrorSpec:
    try:
        return registry()[code]
    except KeyError:
        # An unregistered code is a programming error; surface it as an internal error rather
        # than inventing a status for it.
        return ErrorSpec(code, 500, "Internal server error")


class LunaError(Exception):
    """A LUNA error with its registered HTTP status and generic description."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        s = spec(code)
        self.code = code
        self.desc = s.desc
        self.http_status = s.http_status
        self.detail = detail if detail is not None else s.desc
        super().__init__(f"{code}: {self.detail}")

    def as_json(self) -> dict[str, object]:
        return {"error_code": self.code, "desc": self.desc, "detail": self.detail}


# Codes referred to by name. Values are LUNA's (docs.visionlabs.ai error pages, see the registry).
INTERNAL = 1
QUEUE_UNAVAILABLE = 2  # LUNA's "Queue request timeout": the message queue (NATS) is down
REQUEST_TIMEOUT = 9
# A sibling service did not answer in time (LUNA's "Request timeout", HTTP 504).
SERVICE_UNAVAILABLE = REQUEST_TIMEOUT
DATABASE_ERROR = 10017
AUTH_FAILED = 11002  # login/password not found
LOGIN_EXISTS = 11011
TOKEN_NOT_FOUND = 11022
ACCOUNT_HEADER_NOT_UUID = 11037
PERMISSION_DENIED = 11059  # token lacks the permission
ACCOUNT_HEADER_DISABLED = 11061
TOKEN_CORRUPTED = 11062
TOKEN_AUTH_DENIED = 11064  # resource refuses bearer tokens
AUTHORIZATION_FAILED = 11065
NOT_JSON = 12002
UNAUTHORIZED = 12010  # "This resource needs \"Authorization\" authorization headers"
BAD_QUERY_PARAM = 12012
PAGE_NOT_FOUND = 12013
REQUIRED_QUERY_PARAM = 12014
NO_ONE_QUERY_PARAM = 12016
METHOD_NOT_ALLOWED = 12021
BAD_JSON = 12022
UNACCEPTABLE_CONTENT_TYPE = 12023
UNSUPPORTED_MEDIA_TYPE = 12024
NO_DATA = 12030
BAD_INPUT = 12031  # generic "Bad/incomplete input data" with a specific detail
FORBIDDEN = 12033
ACCOUNT_NOT_FOUND = 15012
SUBSCRIBE_WITHOUT_ACCOUNT = 29001  # Sender ws handshake without Luna-Account-Id
BAD_BASIC_AUTH = 36002

_HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_status_for(http_status: int) -> grpc.StatusCode:
    return _HTTP_TO_GRPC.get(
        http_status,
        grpc.StatusCode.INVALID_ARGUMENT if 400 <= http_status < 500 else grpc.StatusCode.INTERNAL,
    )

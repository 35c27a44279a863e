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


# Every LUNA code the platform raises, named once. Values are LUNA's (docs.visionlabs.ai error
# pages and the seeds, see the registry); services use these names, never a local constant.
INTERNAL = 1
QUEUE_UNAVAILABLE = 2  # LUNA's "Queue request timeout": the message queue (NATS) is down
REQUEST_TIMEOUT = 9  # a sibling service did not answer in time (HTTP 504)
IMAGE_DECODE_FAILED = 3001  # Backport 3 liveness: an image that does not decode
NO_FACES_FOUND = 4003  # Backport 3's identify/extract "No faces found" (500)
DATABASE_ERROR = 10017
AUTH_FAILED = 11002  # login/password not found
ACCOUNT_SUSPENDED = 11004
LOGIN_EXISTS = 11011
TOO_MANY_FACES = 11012  # Backport 3 extract policy "Too many faces found"
DESCRIPTOR_NOT_FOUND = 11018
OBJECTS_NOT_FOUND = 11020
TOKEN_NOT_FOUND = 11022
EXTERNAL_REQUEST_FAILED = 11027
BAD_IMAGE_CONTENT_TYPE = 11028
BAD_PART_CONTENT_TYPE = 11029  # Backport 3 liveness: a multipart image of a bad type
BAD_SAMPLE_SIZE = 11030  # image size is not 250x250
FACE_HAS_NO_ATTRIBUTES = 11032
ACCOUNT_HEADER_NOT_UUID = 11037
MULTIPLE_FACES = 11038
BAD_MULTIPART = 11049  # Backport 3 liveness: no image part, or a repeated filename
NO_FACE_WITH_EXTERNAL_ID = 11041
BAD_WARP_SIZE = 11043
FEATURE_DISABLED = 11044  # "{value} turned off on luna-api instance"
LIVENESS_DISABLED = 11054
NO_EVENT_WITH_EXTERNAL_ID = 11057
PERMISSION_DENIED = 11059  # token lacks the permission
ACCOUNT_HEADER_DISABLED = 11061
TOKEN_CORRUPTED = 11062
TOKEN_AUTH_DENIED = 11064  # resource refuses bearer tokens
AUTHORIZATION_FAILED = 11065
HANDLER_NOT_ALLOWED = 11067
EVENTS_NOT_ALLOWED = 11068
PORTRAITS_DISABLED = 11070
NOT_UUID4 = 12001  # Backport 3: an X-Auth-Token that is not a UUID
NOT_JSON = 12002
UNAUTHORIZED = 12010  # "This resource needs \"Authorization\" authorization headers"
BAD_QUERY_PARAM = 12012
PAGE_NOT_FOUND = 12013
REQUIRED_QUERY_PARAM = 12014
NO_ONE_QUERY_PARAM = 12016
BAD_CONTENT_TYPE = 12017
METHOD_NOT_ALLOWED = 12021
BAD_JSON = 12022
UNACCEPTABLE_CONTENT_TYPE = 12023
UNSUPPORTED_MEDIA_TYPE = 12024
NOT_IMPLEMENTED = 12029
NO_DATA = 12030
BAD_INPUT = 12031  # generic "Bad/incomplete input data" with a specific detail
FORBIDDEN = 12033
BAD_DESCRIPTOR_LENGTH = 12034
XPK_INVALID = 12035
DESCRIPTOR_VERSION_NOT_REGISTERED = 12037
SDK_DESCRIPTOR_INVALID = 12038
MULTIPART_BAD_TYPE = 12041  # "Multipart with name '{value}' has bad Content-Type"
RESOURCE_DISABLED = 12049
IMAGE_NOT_FOUND = 13003
OBJECT_NOT_FOUND = 13007
ACCOUNT_NOT_FOUND = 15012
BAD_BASE64 = 18001  # "Failed convert data from base64 to bytes"
BAD_IMAGE = 18002  # "Failed convert bytes to {value}"
FACE_EXISTS = 22001  # "Unique constraint error" (409)
FACE_NOT_FOUND = 22002
LIST_NOT_FOUND = 22003
FACES_NOT_FOUND = 22004
LISTS_NOT_FOUND = 22005
PERSON_NOT_FOUND = 22007
ALREADY_ATTACHED = 22008
ATTRIBUTE_FOR_UPDATE_NOT_FOUND = 22010
ATTRIBUTE_NOT_FOUND = 22011
DESCRIPTOR_VERSION_NOT_FOUND = 22018
EVENT_NOT_FOUND = 23001
HUMAN_DESCRIPTOR_NOT_FOUND = 23007
BAD_DESCRIPTOR = 26302  # "Failed to load descriptor bytes"
TASK_NOT_FOUND = 28001
TASK_ERROR_NOT_FOUND = 28003
TASK_NOT_REPORTABLE = 28013
TASK_BAD_STATUS_FOR_REPORT = 28015
TASK_RESULT_NOT_FOUND = 28017
TASK_NO_RESULT_YET = 28018
TASK_CANNOT_CANCEL = 28019
TASK_CANCELLED_RESULT = 28020
SCHEDULE_NOT_FOUND = 28040
SUBSCRIBE_WITHOUT_ACCOUNT = 29001  # Sender ws handshake without Luna-Account-Id
DESCRIPTOR_VERSION_MISMATCH = 31001
HANDLER_NOT_FOUND = 34000
UNSUPPORTED_DESCRIPTOR_VERSION = 34001
VERIFIER_NOT_FOUND = 34004
ONLY_DYNAMIC_HANDLER = 34007
NOT_PERSONS_LIST = 36001
BAD_BASIC_AUTH = 36002
NO_FACES = 36003  # "No faces found."
NOT_ATTACHED = 36004
WS_DISABLED = 36005
UNSUPPORTED_PARAM = 36012
INVALID_IMAGE_TYPE = 100033  # Backport 3: an image that does not decode


def bad_json(path: str, message: str) -> LunaError:
    """12022 as LUNA words it for a request field that fails validation."""
    return LunaError(
        BAD_JSON, f"Failed to validate input json. Path: '{path}', message: '{message}'"
    )


def bad_query(name: str, detail: str = "") -> LunaError:
    """12012 as LUNA words it for a query (or path) parameter that fails validation."""
    message = f"Bad query parameters '{name}'"
    return LunaError(BAD_QUERY_PARAM, f"{message}: {detail}" if detail else message)


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

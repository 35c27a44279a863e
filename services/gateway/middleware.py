"""Request-id and error middlewares: every response carries Luna-Request-Id and every
failure is rendered as a LUNA error with its documented HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from services.common import errors, logs
from services.gateway import request_ids

log = logging.getLogger("luna.gateway")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_body(err: errors.LunaError) -> bytes:
    try:
        return orjson.dumps(err.as_json())
    except TypeError:  # a detail quoting undecodable client bytes (lone surrogates)
        safe = {
            k: v.encode("utf-8", "backslashreplace").decode() if isinstance(v, str) else v
            for k, v in err.as_json().items()
        }
        return orjson.dumps(safe)


def error_response(err: errors.LunaError, rid: str) -> web.Response:
    return web.Response(
        body=_error_body(err),
        status=err.http_status,
        content_type="application/json",
        headers={request_ids.HEADER: rid},
    )


@web.middleware
async def luna_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get(request_ids.HEADER)
    rid = given if given and request_ids.is_valid(given) else request_ids.new_request_id()
    token = logs.request_id.set(rid)
    try:
        if given is not None and given != rid:
            raise errors.LunaError(
                errors.BAD_INPUT,
                f"Bad header '{request_ids.HEADER}': expected '<unix seconds>,<uuid4>'",
            )
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            raise errors.LunaError(errors.PAGE_NOT_FOUND, "Page not found") from None
        except web.HTTPMethodNotAllowed:
            raise errors.LunaError(errors.METHOD_NOT_ALLOWED, "Method not allowed") from None
        except web.HTTPRequestEntityTooLarge:
            raise errors.LunaError(errors.BAD_INPUT, "Request body is too large") from None
        except web.HTTPBadRequest as exc:
            # aiohttp's own refusals (a websocket route without an Upgrade header, ...)
            detail = (exc.text or "").strip().replace("\n", " ") or "Bad request"
            raise errors.LunaError(errors.BAD_INPUT, detail) from None
        if not response.prepared:  # a websocket has sent its headers already
            response.headers[request_ids.HEADER] = rid
        return response
    except errors.LunaError as err:
        if err.http_status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, err.detail)
        return error_response(err, rid)
    except web.HTTPException as exc:
        exc.headers[request_ids.HEADER] = rid
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(errors.LunaError(errors.INTERNAL), rid)
    finally:
        logs.request_id.reset(token)


def _protocol_error(
    self: RequestHandler,
    request: web.BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    """aiohttp's answer to a request it could not parse (or a failure past every middleware),
    in LUNA's format instead of aiohttp's plain text."""
    if status >= 500:
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
        err = errors.LunaError(errors.INTERNAL)
    elif isinstance(exc, LineTooLong):
        err = errors.LunaError(
            errors.BAD_INPUT, f"Request line or header is too long (limit {self.max_line_size})"
        )
    else:
        reason = (message or "").strip().splitlines()[0] if message else "malformed request"
        reason = reason.encode("ascii", "backslashreplace").decode()[:200]
        err = errors.LunaError(errors.BAD_INPUT, f"Bad HTTP request: {reason}")
    response = error_response(err, request_ids.new_request_id())
    response.force_close()  # the stream may be out of step with HTTP framing now
    return response


def install_protocol_errors() -> None:
    """Answer requests aiohttp cannot parse (a URL over 8190 bytes, a broken request line or
    header) as LUNA errors. aiohttp builds those answers in `RequestHandler.handle_error`,
    below the application and its middlewares, with no setting to change them; the gateway
    process replaces that method once at start."""
    RequestHandler.handle_error = _protocol_error  # type: ignore[method-assign]

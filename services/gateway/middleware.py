"""Request-id and error middlewares: every response carries Luna-Request-Id and every
failure is rendered as a LUNA error with its documented HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.common import errors, logs
from services.gateway import request_ids

log = logging.getLogger("luna.gateway")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(err: errors.LunaError, rid: str) -> web.Response:
    import orjson

    return web.Response(
        body=orjson.dumps(err.as_json()),
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

"""Reading multipart/form-data request bodies, with every malformation answered as LUNA input
errors rather than whatever aiohttp's reader raises (ValueError, header parse errors, nested
readers without a boundary, undecodable part names)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from services.common import errors


@dataclass(frozen=True)
class Part:
    name: str
    filename: str
    # The bare media type, lowercase ("" when the part has none).
    content_type: str
    data: bytes


def _malformed(reason: str) -> errors.LunaError:
    return errors.LunaError(errors.BAD_INPUT, f"Malformed multipart body: {reason}")


def _text(value: str | None, what: str) -> str:
    """A part's name or filename: refused unless it is clean UTF-8 text PostgreSQL can hold."""
    if not value:
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # header bytes that were not UTF-8 (decoded with surrogates)
        raise _malformed(f"a part {what} is not valid UTF-8") from None
    if "\x00" in value:
        raise _malformed(f"a part {what} contains a NUL character")
    return value


async def parts(request: web.Request) -> AsyncIterator[Part]:
    """Each part of the request body, read whole, in order."""
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        raise _malformed(_reason(exc)) from None
    while True:
        try:
            part = await reader.next()
            if part is None:
                return
            if not isinstance(part, BodyPartReader):  # a nested multipart: not LUNA's
                raise errors.LunaError(
                    errors.MULTIPART_BAD_TYPE, "Nested multipart is not supported"
                )
            data = bytes(await part.read(decode=False))
        except (ValueError, AssertionError, HttpProcessingError) as exc:
            # aiohttp refuses a nested multipart without boundary as it opens it
            if "boundary missed" in str(exc):
                raise errors.LunaError(
                    errors.MULTIPART_BAD_TYPE, "Nested multipart is not supported"
                ) from None
            raise _malformed(_reason(exc)) from None
        media = (part.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        yield Part(_text(part.name, "name"), _text(part.filename, "filename"), media, data)


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    # Details travel as JSON text: keep them ASCII and short, whatever bytes the client sent.
    return text.strip().encode("ascii", "backslashreplace").decode()[:200] or type(exc).__name__

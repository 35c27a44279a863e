"""Image decoding for the estimator: the 5 LUNA image types and their base64 variants.

Decoding goes through Pillow, not cv2.imdecode, because Pillow reports truncated data as an
error (cv2 silently returns a partly grey image) and exposes EXIF orientation.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from services.common import errors
from services.common.errors import LunaError

# Never decode a truncated file "as far as it goes": that would hand half a face to the models.
ImageFile.LOAD_TRUNCATED_IMAGES = False

MIME_FORMATS: dict[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/bmp": "BMP",
    "image/x-portable-pixmap": "PPM",
    "image/tiff": "TIFF",
}
BASE64_MIME: dict[str, str] = {
    "image/x-jpeg-base64": "image/jpeg",
    "image/x-png-base64": "image/png",
    "image/x-bmp-base64": "image/bmp",
    "image/x-tiff-base64": "image/tiff",
    "image/x-portable-pixmap-base64": "image/x-portable-pixmap",
}
SUPPORTED_CONTENT_TYPES = (*MIME_FORMATS, *BASE64_MIME)

# Pillow reports PBM/PGM/PPM all as "PPM"; MPO is a JPEG with extra frames (phone cameras).
_FORMAT_ALIASES = {"MPO": "JPEG"}


@dataclass(frozen=True)
class ImageLimits:
    """Sizes the estimator accepts; the app reads them from LUNA_MAX_IMAGE_BYTES,
    LUNA_MAX_IMAGE_PIXELS and LUNA_MAX_REQUEST_PIXELS (whose defaults these are)."""

    # Largest encoded image, in bytes (after base64 decoding).
    image_bytes: int = 20 * 1024 * 1024
    # Largest decoded image, in pixels (width x height).
    image_pixels: int = 40_000_000
    # Most decoded pixels one request may carry (read from the headers before decoding).
    request_pixels: int = 200_000_000


DEFAULT_LIMITS = ImageLimits()
# Most decoded image pixels held at once over all requests (LUNA_ESTIMATOR_INFLIGHT_PIXELS).
DEFAULT_INFLIGHT_PIXELS = 80_000_000


def image_pixels(data: bytes, content_type: str | None = None) -> int:
    """Width x height from the image header only (nothing is decoded); 0 when the header
    cannot be read (decoding will report that error, without allocating pixels)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower() or None
    try:
        if ctype in BASE64_MIME:
            data = _unbase64(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
    except Exception:  # any unreadable header: decode_image reports it properly
        return 0
    return int(w) * int(h)


def check_request_pixels(pixels: list[int], limit: int = DEFAULT_LIMITS.request_pixels) -> None:
    """Refuse a request whose images together exceed `limit` (LUNA_MAX_REQUEST_PIXELS)."""
    total = sum(pixels)
    if total > limit:
        raise LunaError(
            errors.BAD_INPUT,
            f"Images of the request hold {total} pixels, more than the {limit} pixels limit "
            "per request (LUNA_MAX_REQUEST_PIXELS); send fewer or smaller images",
        )


SAMPLE_PIXELS = 250 * 250


def check_sample_header(data: bytes, content_type: str | None = None) -> None:
    """Refuse a "sample" larger than 250x250 from its header, before decoding it."""
    pixels = image_pixels(data, content_type)
    if pixels > SAMPLE_PIXELS:
        raise LunaError(errors.BAD_SAMPLE_SIZE, f"Image of {pixels} pixels is not a 250x250 sample")


def _unbase64(data: bytes) -> bytes:
    text = data.strip()
    if text.startswith(b"data:") and b"," in text:
        text = text.split(b",", 1)[1]
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as e:
        raise LunaError(errors.BAD_IMAGE, f"Failed convert bytes to image: bad base64 ({e})") from e


def decode_image(
    data: bytes,
    content_type: str | None = None,
    *,
    use_exif: bool = True,
    max_bytes: int = DEFAULT_LIMITS.image_bytes,
    max_pixels: int = DEFAULT_LIMITS.image_pixels,
) -> np.ndarray:
    """Decode to an RGB uint8 HxWx3 array, honouring EXIF orientation.

    `content_type` (a LUNA image MIME type) is checked against the actual format; None means
    "sniff". TIFF is always auto-oriented (as LUNA documents); `use_exif=False` skips it for
    the other formats.
    """
    ctype = (content_type or "").split(";", 1)[0].strip().lower() or None
    if ctype is not None and ctype not in SUPPORTED_CONTENT_TYPES:
        raise LunaError(errors.BAD_IMAGE_CONTENT_TYPE, f"Bad content type of image {ctype!r}")
    if ctype in BASE64_MIME:
        data = _unbase64(data)
        ctype = BASE64_MIME[ctype]
    limit = max_bytes
    if len(data) > limit:
        raise LunaError(
            errors.BAD_JSON, f"Image of {len(data)} bytes exceeds the {limit} bytes limit"
        )
    if not data:
        raise LunaError(errors.BAD_IMAGE, "Failed convert bytes to image: empty body")
    pix_limit = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = _FORMAT_ALIASES.get(img.format or "", img.format or "")
            if fmt not in MIME_FORMATS.values():
                raise LunaError(
                    errors.BAD_IMAGE_CONTENT_TYPE, f"Bad content type of image: {fmt or 'unknown'}"
                )
            if ctype is not None and MIME_FORMATS[ctype] != fmt:
                raise LunaError(
                    errors.BAD_IMAGE_CONTENT_TYPE,
                    f"Bad content type of image: declared {ctype}, data is {fmt}",
                )
            w, h = img.size
            if w * h > pix_limit:
                raise LunaError(
                    errors.BAD_JSON, f"Image of {w}x{h} pixels exceeds the {pix_limit} pixels limit"
                )
            img.load()
            if use_exif or fmt == "TIFF":
                # In place: a copy would be one more full-size image in memory at once.
                ImageOps.exif_transpose(img, in_place=True)
            rgb = img if img.mode == "RGB" else img.convert("RGB")
    except LunaError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as e:
        raise LunaError(errors.BAD_IMAGE, f"Failed convert bytes to image: {e}") from e
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise LunaError(errors.BAD_IMAGE, "Failed convert bytes to image: no pixels")
    return np.ascontiguousarray(arr)


def as_rgb_array(
    image: bytes | np.ndarray,
    content_type: str | None = None,
    *,
    use_exif: bool = True,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Bytes are decoded (within `limits`); arrays are validated (HxWx3 RGB uint8, or HxW
    gray)."""
    if isinstance(image, bytes | bytearray | memoryview):
        return decode_image(
            bytes(image),
            content_type,
            use_exif=use_exif,
            max_bytes=limits.image_bytes,
            max_pixels=limits.image_pixels,
        )
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise LunaError(errors.BAD_IMAGE, f"Failed convert bytes to image: dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise LunaError(errors.BAD_IMAGE, f"Failed convert bytes to image: shape {arr.shape}")
    return np.ascontiguousarray(arr[:, :, :3])


def encode_image(rgb: np.ndarray, fmt: str = "JPEG", quality: int = 95) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(rgb)
    if fmt.upper() == "JPEG":
        img.save(buf, format="JPEG", quality=quality)
    else:
        img.save(buf, format=fmt.upper())
    return buf.getvalue()


# Read by `luna config` to list these lazily read settings.
